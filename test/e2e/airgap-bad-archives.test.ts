// `ocimirror import` of damaged archives into a running mirror: a cut-short archive imports nothing; a flipped
// byte or a missing blob fails that image only, naming the member; nothing of a failed image is ever served.
// Also a classic `docker save` archive (layers at <id>/layer.tar, a shared layer as a symbolic link).
import { existsSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, writeCacheConfig } from '../helpers/airgap.js';
import { dockerSaveMembers, flipByte, ociLayoutMembers, writeTar } from '../helpers/archives.js';
import { buildImage, sha256, type BuiltImage } from '../helpers/images.js';
import { deadPort } from '../helpers/ports.js';
import { fetchFrom, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';

let work: string;
let proxy: TestProxy;
let config: string;
let a: BuiltImage;
let b: BuiltImage;
const common = { 'common/base.txt': 'shared base layer\n' };

beforeAll(async () => {
  work = mkdtempSync('/tmp/airgap-bad-');
  [a, b] = await Promise.all([
    buildImage({ format: 'oci', label: 'bad a', files: [common, { 'a.txt': 'only in a\n'.repeat(2000) }] }),
    buildImage({ format: 'oci', label: 'bad b', files: [common, { 'b.txt': 'only in b\n' }] }),
  ]);
  expect(a.layers[0]?.digest).toBe(b.layers[0]?.digest);
}, 60_000);

afterEach(async () => {
  await proxy?.close();
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function freshProxy(): Promise<void> {
  const endpoint = `http://127.0.0.1:${await deadPort()}`;
  proxy = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [endpoint] } } });
  config = writeCacheConfig(work, 'bad', proxy.cacheDir, { 'docker.io': [endpoint] });
}

const stored = (digest: string, top: 'blobs' | 'manifests' = 'blobs') => existsSync(join(proxy.cacheDir, top, 'sha256', digest.slice(7, 9), digest.slice(7)));
const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : []);

async function tagStatus(repo: string): Promise<number> {
  return (await fetchFrom(proxy.url, `/v2/${repo}/manifests/1.0?ns=docker.io`, { method: 'HEAD' })).status;
}

describe('damaged archives', () => {
  it('a cut-short archive names the member it ends in and leaves the cache untouched', async () => {
    await freshProxy();
    const file = join(work, 'cut.tar');
    const members = ociLayoutMembers([{ name: 'docker.io/library/a:1.0', image: a }]);
    const bytes = await writeTar(file, members);
    const layer = a.layers[1]!;
    const at = bytes.indexOf(a.layers[1]!.data!);
    truncateSync(file, at + Math.floor(layer.size / 2));
    const r = await runCli('import', ['-c', config, file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}: FAILED, nothing imported: blobs/sha256/${layer.digest.slice(7)}: the archive is cut short inside this entry`);
    expect(files(join(proxy.cacheDir, 'blobs'))).toEqual([]);
    expect(files(join(proxy.cacheDir, 'manifests'))).toEqual([]);
    expect(files(join(proxy.cacheDir, 'tags'))).toEqual([]);
    expect(files(join(proxy.cacheDir, 'tmp'))).toEqual([]);
    expect(await tagStatus('library/a')).not.toBe(200);
  });

  it('a gzip archive cut short says so too', async () => {
    await freshProxy();
    const file = join(work, 'cut.tar.gz');
    const bytes = await writeTar(file, ociLayoutMembers([{ name: 'docker.io/library/a:1.0', image: a }]), { gzip: true });
    writeFileSync(file, bytes.subarray(0, bytes.length - 40));
    const r = await runCli('import', ['-c', config, file]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAILED, nothing imported: .*cut short/);
    expect(files(join(proxy.cacheDir, 'tags'))).toEqual([]);
  });

  it('one flipped byte in a layer fails that image, naming the member; the other image of the archive is imported', async () => {
    await freshProxy();
    const file = join(work, 'flipped.tar');
    const layer = a.layers[1]!;
    const members = ociLayoutMembers([{ name: 'docker.io/library/a:1.0', image: a }, { name: 'docker.io/library/b:1.0', image: b }])
      .map((m) => (m.name === `blobs/sha256/${layer.digest.slice(7)}` ? { ...m, data: flipByte(m.data!) } : m));
    await writeTar(file, members);
    const r = await runCli('import', ['-c', config, file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`FAILED docker.io/library/a:1.0: blobs/sha256/${layer.digest.slice(7)}: content does not match the digest its name gives`);
    expect(r.out).toContain(`imported docker.io/library/b:1.0 ${b.manifestDigest}`);
    expect(await tagStatus('library/a')).not.toBe(200);
    expect(stored(a.manifestDigest, 'manifests')).toBe(false);
    expect(stored(layer.digest) || stored(a.config.digest)).toBe(false);
    // The layer both images use came in with b.
    expect(stored(a.layers[0]!.digest)).toBe(true);
    expect((await pullThrough(proxy.url, 'library/b', '1.0', { ns: 'docker.io' })).digest).toBe(b.manifestDigest);
  });

  it('a missing blob fails that image, naming the member and who needs it', async () => {
    await freshProxy();
    const file = join(work, 'missing.tar');
    const layer = a.layers[1]!;
    await writeTar(file, ociLayoutMembers([{ name: 'docker.io/library/a:1.0', image: a }]).filter((m) => m.name !== `blobs/sha256/${layer.digest.slice(7)}`));
    const r = await runCli('import', ['-c', config, file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`FAILED docker.io/library/a:1.0: blobs/sha256/${layer.digest.slice(7)}: missing from the archive (layers[1] of manifest ${a.manifestDigest})`);
    expect(await tagStatus('library/a')).not.toBe(200);
    expect(files(join(proxy.cacheDir, 'blobs'))).toEqual([]);
  });
});

describe('classic docker save archives', () => {
  it('are imported with a schema 2 manifest built from their content, shared layers through symbolic links', async () => {
    await freshProxy();
    const file = join(work, 'docker-save.tar');
    await writeTar(file, dockerSaveMembers([{ tag: 'a:1.0', image: a }, { tag: 'b:1.0', image: b }]));
    const r = await runCli('import', ['-c', config, file]);
    expect(r.code, r.err).toBe(0);
    const digest = /imported docker\.io\/library\/b:1\.0 (sha256:[a-f0-9]{64})/.exec(r.out)?.[1];
    const pulled = await pullThrough(proxy.url, 'library/b', '1.0', { ns: 'docker.io' });
    expect(pulled.digest).toBe(digest);
    const manifest = JSON.parse((await fetchFrom(proxy.url, `/v2/library/b/manifests/${digest}?ns=docker.io`)).body.toString('utf8')) as { config: { digest: string }; layers: { mediaType: string; digest: string }[] };
    // The config is the image's own; the layers are the uncompressed tars docker save holds.
    expect(manifest.config.digest).toBe(b.config.digest);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.docker.image.rootfs.diff.tar']);
    const diffIds = (JSON.parse(b.config.data!.toString('utf8')) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    expect(manifest.layers.map((l) => l.digest)).toEqual(diffIds);
  });

  it('a flipped byte in a layer.tar is found against the config\'s diff id, naming the member', async () => {
    await freshProxy();
    const file = join(work, 'docker-save-flipped.tar');
    const members = dockerSaveMembers([{ tag: 'a:1.0', image: a }]);
    const target = members.filter((m) => m.name.endsWith('/layer.tar'))[1]!;
    await writeTar(file, members.map((m) => (m === target ? { ...m, data: flipByte(m.data!) } : m)));
    const r = await runCli('import', ['-c', config, file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`FAILED docker.io/library/a:1.0: ${target.name}: content (${sha256(flipByte(target.data!))}) does not match rootfs.diff_ids[1]`);
    expect(files(join(proxy.cacheDir, 'tags'))).toEqual([]);
    expect(readdirSync(join(proxy.cacheDir, 'tmp'))).toEqual([]);
  });
});

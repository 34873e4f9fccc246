// `ocimirror export` from a warmed mirror, read back by the real tools: ctr images import restores names and
// digests, skopeo copy oci-archive: gives the same digests, podman load takes the docker format. The upstream is
// stopped before the export, so every byte comes from the cache; one image the cache lacks is pulled on the way.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { runCli, writeCacheConfig } from '../helpers/airgap.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildImage, buildIndex, type BuiltImage, type BuiltIndex } from '../helpers/images.js';
import { makePodman, type Podman } from '../helpers/podman.js';
import { pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage, pushIndex } from '../helpers/push.js';
import { skopeo } from '../helpers/skopeo.js';

if (process.getuid?.() !== 0) throw new Error('the export suite needs root: containerd and podman mount snapshots');

const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }];
let work: string;
let dist: Distribution;
let proxy: TestProxy;
let tiny: BuiltImage;
let multi: BuiltIndex;
let late: BuiltImage;
let config: string;
let containerd: Containerd | undefined;
let podman: Podman | undefined;

beforeAll(async () => {
  work = mkdtempSync('/tmp/airgap-export-');
  [tiny, multi, late] = await Promise.all([
    buildImage({ format: 'oci', label: 'export tiny' }),
    buildIndex({ format: 'oci', platforms, label: 'export multi' }),
    buildImage({ format: 'docker', label: 'export late' }),
  ]);
  dist = await startDistribution();
  await pushImage(dist.url, 'library/tiny', '1.0', tiny);
  await pushIndex(dist.url, 'library/multi', '1.0', multi);
  await pushImage(dist.url, 'team/late', '2.0', late);
  proxy = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } } });
  await pullThrough(proxy.url, 'library/tiny', '1.0', { ns: 'docker.io' });
  await pullThrough(proxy.url, 'library/multi', '1.0', { ns: 'docker.io' });
  config = writeCacheConfig(work, 'central', proxy.cacheDir, { 'docker.io': [dist.url] });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([containerd?.stop(), podman?.cleanup(), proxy?.close(), dist?.close()]);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('export from a warmed mirror with the upstream stopped', () => {
  let archive: string;

  it('writes tiny and every platform of multi; the summary names both digests', async () => {
    await dist.stop();
    archive = join(work, 'images.tar');
    const r = await runCli('export', ['-c', config, '-o', archive, '--all-platforms', 'tiny:1.0', 'docker.io/library/multi:1.0']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`ok +docker\\.io/library/tiny:1\\.0 +${tiny.manifestDigest}`));
    expect(r.out).toMatch(new RegExp(`ok +docker\\.io/library/multi:1\\.0 +${multi.manifestDigest}`));
    expect(r.err).toContain('docker.io/library/multi:1.0: 3 manifest(s) for linux/amd64, linux/arm64/v8, 6 blob(s)');
  });

  it('ctr images import restores both names with the upstream digests, into a fresh namespace', async () => {
    containerd = await startContainerd();
    await containerd.ctr(['images', 'import', '--all-platforms', archive], { namespace: 'airgap', timeoutMs: 120_000 });
    expect(await containerd.imageDigest('docker.io/library/tiny:1.0', 'airgap')).toBe(tiny.manifestDigest);
    expect(await containerd.imageDigest('docker.io/library/multi:1.0', 'airgap')).toBe(multi.manifestDigest);
    // Another namespace saw nothing of it.
    expect(await containerd.imageDigest('docker.io/library/tiny:1.0', CRI_NAMESPACE)).toBeUndefined();
  });

  it('skopeo copy oci-archive: picks each image by its full name and keeps every digest', async () => {
    const one = join(work, 'skopeo-tiny');
    await skopeo(['--insecure-policy', 'copy', `oci-archive:${archive}:docker.io/library/tiny:1.0`, `oci:${one}:1.0`]);
    const all = join(work, 'skopeo-multi');
    await skopeo(['--insecure-policy', 'copy', '--all', `oci-archive:${archive}:docker.io/library/multi:1.0`, `oci:${all}:1.0`]);
    const digestOf = (dir: string) => (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]?.digest;
    expect(digestOf(one)).toBe(tiny.manifestDigest);
    expect(digestOf(all)).toBe(multi.manifestDigest);
    for (const { image } of multi.images) {
      expect(readFileSync(join(all, 'blobs', 'sha256', image.manifestDigest.slice(7))).equals(image.manifest)).toBe(true);
    }
  });

  // Plain tar: podman 4.3's docker-archive reader (containers/image 5.23) fails on gzip-compressed archives.
  it('--format docker loads into podman with the image name and config', async () => {
    const file = join(work, 'tiny-docker.tar');
    const r = await runCli('export', ['-c', config, '-o', file, '--format', 'docker', 'tiny:1.0']);
    expect(r.code, r.err).toBe(0);
    podman = await makePodman();
    await podman.run(['load', '-i', file]);
    const { stdout } = await podman.run(['image', 'inspect', '--format', '{{.Id}}', 'docker.io/library/tiny:1.0']);
    expect(`sha256:${stdout.trim()}`).toBe(tiny.config.digest);
  });

  it('refuses several platforms in the docker format, and zstd output, before doing anything', async () => {
    await expect(runCli('export', ['-c', config, '-o', join(work, 'x.tar'), '--format', 'docker', '--all-platforms', 'multi:1.0'])).rejects.toThrow(/one platform per image/);
    await expect(runCli('export', ['-c', config, '-o', join(work, 'x.tar.zst'), 'tiny:1.0'])).rejects.toThrow(/zstd is read by import but not written/);
  });

  it('fails without writing anything when an image is not cached and the upstream is down', async () => {
    const file = join(work, 'none.tar');
    const r = await runCli('export', ['-c', config, '-o', file, 'tiny:1.0', 'team/late:2.0']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAILED +docker\.io\/team\/late:2\.0 +manifest 2\.0: UNAVAILABLE/);
    expect(r.err).toContain('nothing written');
    expect(() => readFileSync(file)).toThrow(/ENOENT/);
  });

  it('refuses what policies deny and allowRepositories leaves out, cached or not, and writes nothing', async () => {
    const refusing = writeCacheConfig(work, 'refusing', proxy.cacheDir, { 'docker.io': [dist.url] }, {
      policies: [{ match: { registry: 'docker.io', repository: 'library/multi' }, deny: true }],
      allowRepositories: ['docker.io/library/*'],
    });
    const file = join(work, 'refused.tar');
    const r = await runCli('export', ['-c', refusing, '-o', file, 'multi:1.0', 'team/late:2.0']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAILED +docker\.io\/library\/multi:1\.0 +refused by the configuration: docker\.io\/library\/multi is denied by policies\[0\] \(refusing\.yaml:\d+:\d+\)/);
    expect(r.out).toMatch(/FAILED +docker\.io\/team\/late:2\.0 +refused by the configuration: docker\.io\/team\/late matches no allowRepositories entry/);
    expect(() => readFileSync(file)).toThrow(/ENOENT/);
  });

  it('pulls what the cache lacks through the upstream first (gzip archive), and the running mirror then serves it from the cache', async () => {
    await dist.start();
    const file = join(work, 'late.tar.gz');
    const r = await runCli('export', ['-c', config, '-o', file, 'team/late:2.0']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/docker\.io\/team\/late:2\.0: blob sha256:\S+ .* \(3\/3\)/);
    await dist.flushLog();
    for (const b of late.blobs) expect(dist.count('GET', new RegExp(`/blobs/${b.digest}$`)), b.digest).toBe(1);
    await dist.stop();
    const pulled = await pullThrough(proxy.url, 'team/late', '2.0', { ns: 'docker.io' });
    expect(pulled.digest).toBe(late.manifestDigest);
    // A Docker-typed image in an OCI layout: containerd takes it (ctr 1.6 reads plain tars; K3s's agent/images/
    // unpacks gzip itself). skopeo 1.9 would not: it looks for OCI-typed manifests only in index.json.
    const plain = join(work, 'late.tar');
    execFileSync('sh', ['-c', `gunzip -c '${file}' > '${plain}'`]);
    await containerd!.ctr(['images', 'import', plain], { namespace: 'gzip', timeoutMs: 120_000 });
    expect(await containerd!.imageDigest('docker.io/team/late:2.0', 'gzip')).toBe(late.manifestDigest);
  });
});

// `ocimirror cache list | rm | prune` against a real mirror cache: sizes as the images have them; rm keeps a blob
// another image uses, and a pull afterwards fetches only what was removed; with the server running, removal goes
// through its admin socket and a blob a client is reading is deleted only when that read ends; prune by age acts
// on the stores directly when no server runs.
import { existsSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CachedImage } from '../../src/cache/cache-admin.js';
import { runCli, writeCacheConfig } from '../helpers/airgap.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildImage, buildLargeLayerImage, type BuiltImage } from '../helpers/images.js';
import { pullThrough } from '../helpers/proxy.js';
import { BlobClient, startRestartableProxy, type RestartableProxy } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/eventually.js';
import { pushImage } from '../helpers/push.js';

const DAY = 86_400_000;
let work: string;
let dist: Distribution;
let proxy: RestartableProxy;
let config: string;
let a: BuiltImage;
let b: BuiltImage;
let big: BuiltImage;
const common = { 'common/base.txt': 'the layer both images share\n'.repeat(100) };

beforeAll(async () => {
  work = mkdtempSync('/tmp/cache-admin-');
  [a, b, big] = await Promise.all([
    buildImage({ format: 'oci', label: 'admin a', files: [common, { 'a.txt': 'a\n' }] }),
    buildImage({ format: 'docker', label: 'admin b', files: [common, { 'b.txt': 'b\n' }] }),
    buildLargeLayerImage({ format: 'oci', sizeBytes: 24 * 1024 * 1024, dir: work, label: 'admin big' }),
  ]);
  dist = await startDistribution();
  await pushImage(dist.url, 'library/a', '1.0', a);
  await pushImage(dist.url, 'library/b', '1.0', b);
  await pushImage(dist.url, 'library/big', '1.0', big);
  proxy = await startRestartableProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } } }, join(work, 'cache'));
  for (const repo of ['library/a', 'library/b', 'library/big']) await pullThrough(proxy.url, repo, '1.0', { ns: 'docker.io' });
  // Clients finish once the digest is verified; each blob is in the cache after its fsync and rename.
  await waitFor('fills to be stored', () => proxy.running.service.fillsInProgress === 0);
  config = writeCacheConfig(work, 'admin', proxy.cacheDir, { 'docker.io': [dist.url] });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([proxy?.close(), dist?.close()]);
  rmSync(work, { recursive: true, force: true });
}, 60_000);

/** One POST over the admin socket, as the CLI sends it. */
function adminRequest(socketPath: string, path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

const blobFile = (digest: string) => join(proxy.cacheDir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));

async function list(): Promise<CachedImage[]> {
  const r = await runCli('cache', ['list', '-c', config, '--format', 'json']);
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as CachedImage[];
}

describe('cache commands', () => {
  it('list shows each tag with its digest, platform and the bytes of its manifest and blobs', async () => {
    const images = await list();
    const expected = (i: BuiltImage) => i.manifest.length + i.blobs.reduce((n, x) => n + x.size, 0);
    expect(images.map((i) => [i.repository, i.tag, i.digest, i.platforms, i.size, i.blobs, i.missingBlobs, i.state])).toEqual([
      ['library/a', '1.0', a.manifestDigest, ['linux/amd64'], expected(a), 3, 0, 'fresh'],
      ['library/b', '1.0', b.manifestDigest, ['linux/amd64'], expected(b), 3, 0, 'fresh'],
      ['library/big', '1.0', big.manifestDigest, ['linux/amd64'], expected(big), 2, 0, 'fresh'],
    ]);
    expect(images.every((i) => Date.now() - i.lastPulled < 60_000)).toBe(true);
    const table = await runCli('cache', ['list', '-c', config]);
    expect(table.out).toMatch(/^REGISTRY +REPOSITORY +TAG +DIGEST +PLATFORMS +SIZE +LAST PULLED +STATE\n/);
    expect(table.out).toMatch(/docker\.io +library\/big +1\.0 +sha256:[a-f0-9]{12} +linux\/amd64 +24\.\d MiB +\d+s ago +fresh/);
  });

  it('rm goes through the running server, keeps the shared layer, and a pull afterwards fetches only what was removed', async () => {
    const r = await runCli('cache', ['rm', '-c', config, 'a:1.0']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('removed 1 tag(s), 1 manifest(s), 2 blob(s)');
    expect(r.out).toContain('(through the running server)');
    expect(r.out).toContain('kept 1 blob(s) that other cached images use');
    expect(existsSync(blobFile(a.layers[0]!.digest))).toBe(true);
    expect(existsSync(blobFile(a.layers[1]!.digest))).toBe(false);
    expect(existsSync(blobFile(a.config.digest))).toBe(false);
    expect((await list()).map((i) => i.repository)).toEqual(['library/b', 'library/big']);
    dist.resetLog();
    await pullThrough(proxy.url, 'library/a', '1.0', { ns: 'docker.io' });
    // The next test lists the cache: these fills must be stored (fsync, rename) by then, not only served.
    await waitFor('fills to be stored', () => proxy.running.service.fillsInProgress === 0);
    await dist.flushLog();
    const fetched = dist.accessLog().filter((l) => l.method === 'GET' && l.path.includes('/blobs/')).map((l) => l.path.split('/').pop()).sort();
    expect(fetched).toEqual([a.config.digest, a.layers[1]!.digest].sort());
  });

  it('the admin socket answers a request that is not a JSON object with 400 and removes nothing', async () => {
    const before = await list();
    for (const body of ['{not json', 'null', '[1,2]', '"text"']) {
      const res = await adminRequest(join(proxy.cacheDir, 'admin.sock'), '/cache/rm', body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(res.text).toMatch(/JSON object/);
    }
    expect(await list()).toEqual(before);
  });

  it('a blob a client is reading is deleted only when that read ends', async () => {
    const layer = big.layers[0]!;
    const reader = new BlobClient(`${proxy.url}/v2/library/big/blobs/${layer.digest}?ns=docker.io`);
    reader.pause();
    await reader.until(1);
    const r = await runCli('cache', ['rm', '-c', config, 'docker.io/library/big:1.0']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('1 of them are being read now: deleted when those reads end');
    expect(existsSync(blobFile(layer.digest))).toBe(true);
    reader.resume();
    const read = await reader.done;
    expect([read.digest, read.bytes, read.error]).toEqual([layer.digest, layer.size, undefined]);
    await waitFor('the layer file to go once its reader is done', () => !existsSync(blobFile(layer.digest)));
  });

  it('prune --older-than acts on the stores when no server runs: old images go, blobs a recent image uses stay', async () => {
    await proxy.close();
    // A file left by a server that crashed is no server: the command works on the stores.
    writeFileSync(join(proxy.cacheDir, 'admin.sock'), '');
    const old = new Date(Date.now() - 40 * DAY);
    const tagDir = join(proxy.cacheDir, 'tags', 'docker.io', 'library', 'b', '_tags', '1.0');
    utimesSync(join(tagDir, 'any.json'), old, old);
    utimesSync(join(proxy.cacheDir, 'manifests', 'sha256', b.manifestDigest.slice(7, 9), b.manifestDigest.slice(7)), old, old);
    for (const x of b.blobs) utimesSync(blobFile(x.digest), old, old);
    const r = await runCli('cache', ['prune', '-c', config, '--older-than', '30d']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('removed 1 tag(s), 1 manifest(s), 2 blob(s)');
    expect(r.out).toContain('(on the stores (no server running))');
    expect(r.out).toContain('  docker.io/library/b:1.0');
    expect(existsSync(blobFile(b.layers[0]!.digest))).toBe(true);
    expect(existsSync(blobFile(b.layers[1]!.digest))).toBe(false);
    expect((await list()).map((i) => i.repository)).toEqual(['library/a']);
    expect(statSync(blobFile(a.config.digest)).isFile()).toBe(true);
  });
});

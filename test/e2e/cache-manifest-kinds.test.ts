// Hostile manifest requests against a real Distribution: a manifest lookup by a cached blob's digest never opens the
// blob (issue 8, rule 1); junk Accept variants share one tag entry and one upstream request (rule 8); a cache that
// cannot be written still answers (rule 11); and a client leaving a shared manifest request detaches only itself (rule 7).
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, buildLargeLayerImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, MANIFEST_ACCEPT, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { waitFor } from '../helpers/eventually.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir } from '../helpers/tmp.js';

let dist: Distribution;
let big: BuiltImage;
let small: BuiltImage;
let tp: TestProxy | undefined;

beforeAll(async () => {
  dist = await startDistribution();
  big = await buildLargeLayerImage({ format: 'oci', sizeBytes: 16 * 1024 * 1024, seed: 811, compression: 'none', dir: makeTmpDir() });
  small = await buildImage({ format: 'docker', label: 'manifest kinds' });
  await pushImage(dist.url, 'library/big', '1.0', big);
  await pushImage(dist.url, 'library/small', '1.0', small);
}, 120_000);
afterAll(async () => { await dist?.close(); });
afterEach(async () => { await tp?.close(); tp = undefined; });

const onDistribution = () => startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } }, cache: { tagTtl: '10m' } });
const manifestRequests = async (repo: string) => {
  await dist.flushLog();
  return dist.accessLog().filter((l) => l.path.startsWith(`/v2/${repo}/manifests/`)).map((l) => `${l.method} ${l.path.slice(`/v2/${repo}/manifests/`.length)}`);
};

describe('manifests and blobs are distinct kinds in the cache', () => {
  it("a manifest lookup by a cached layer's digest never opens the layer", async () => {
    tp = await onDistribution();
    await pullThrough(tp.url, 'library/big', '1.0');
    const layer = big.layers[0]!;
    await waitFor('the layer to be cached', async () => (await tp!.proxy.service.stores.blobs.stat(layer.digest)) !== undefined);
    const blobs = tp.proxy.service.stores.blobs;
    const readAll = vi.spyOn(blobs, 'readAll');
    const open = vi.spyOn(blobs, 'open');
    const url = `/v2/library/big/manifests/${layer.digest}`;
    const answers = await Promise.all([
      ...Array.from({ length: 4 }, () => fetchFrom(tp!.url, url, { method: 'HEAD' })),
      ...Array.from({ length: 4 }, () => fetchFrom(tp!.url, url)),
    ]);
    expect(readAll).not.toHaveBeenCalled();
    expect(open).not.toHaveBeenCalled();
    for (const a of answers) {
      expect(a.status).toBeGreaterThanOrEqual(400);
      expect(a.body.length).toBeLessThan(4096);
    }
  });
});

describe('the tag cache key is the set of known manifest media types', () => {
  it('junk Accept variants share one entry: one upstream GET, one mapping on disk', async () => {
    tp = await onDistribution();
    dist.resetLog();
    const url = '/v2/library/small/manifests/1.0';
    const variants = [
      MANIFEST_ACCEPT,
      `${MANIFEST_ACCEPT}, application/x-junk-1`,
      `application/x-junk-2;q=0.1, ${MANIFEST_ACCEPT.split(', ').reverse().join(', ')}`,
      ...Array.from({ length: 20 }, (_, i) => `${MANIFEST_ACCEPT}, text/x-${i}`),
    ];
    for (const accept of variants) {
      const res = await fetchFrom(tp.url, url, { headers: { accept } });
      expect(res.status).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(small.manifestDigest);
    }
    expect(await manifestRequests('library/small')).toEqual(['GET 1.0']);
    const tagDir = join(tp.cacheDir, 'tags', 'docker.io', 'library', 'small', '_tags', '1.0');
    expect(readdirSync(tagDir).sort()).toHaveLength(2); // this Accept set, and "any"
  });
});

describe('disk trouble is not a client error', () => {
  it('a manifest fetched upstream is served when saving it fails; logged once, counted', async () => {
    tp = await onDistribution();
    for (const d of ['manifests', 'tags']) {
      rmSync(join(tp.cacheDir, d), { recursive: true, force: true });
      writeFileSync(join(tp.cacheDir, d), 'not a directory');
    }
    for (let i = 0; i < 3; i++) {
      const byTag = await fetchFrom(tp.url, `/v2/library/small/manifests/1.0?n=${i}`);
      expect(byTag.status).toBe(200);
      expect(byTag.body.equals(small.manifest)).toBe(true);
    }
    const metrics = (await fetchFrom(tp.url, '/metrics')).body.toString();
    expect(metrics).toMatch(/ocimirror_cache_write_failures_total\{kind="manifest"\} [1-9]/);
    expect(metrics).toMatch(/ocimirror_cache_write_failures_total\{kind="tag"\} [1-9]/);
    expect(tp.logs().filter((l) => /cannot use its storage/.test(l.msg))).toHaveLength(1);
    // Once the disk is back, the next answer is stored again.
    for (const d of ['manifests', 'tags']) { rmSync(join(tp.cacheDir, d), { force: true }); mkdirSync(join(tp.cacheDir, d)); }
    expect((await fetchFrom(tp.url, `/v2/library/small/manifests/${small.manifestDigest}`)).status).toBe(200);
    expect(await tp.proxy.service.stores.manifests.head(small.manifestDigest)).toMatchObject({ size: small.manifest.length });
  });
});

describe('a joined manifest request does not inherit another client\'s fate', () => {
  it('the first client disconnecting detaches only itself; the second gets the manifest from the same upstream request', async () => {
    const up = await startFaultUpstream();
    try {
      up.add('library/held', '1.0', small);
      let release!: () => void;
      up.fault({ method: 'GET', path: /\/manifests\/sha256:/ }, { kind: 'hold', until: new Promise<void>((r) => { release = r; }) }, 1);
      tp = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [up.url] } } });
      const url = `${tp.url}/v2/library/held/manifests/${small.manifestDigest}`;
      const leaving = new AbortController();
      const first = request(url, { headers: { accept: MANIFEST_ACCEPT }, signal: leaving.signal }).catch((e: unknown) => e);
      await waitFor('the upstream to receive the manifest GET', () => up.count('GET', /\/manifests\/sha256:/) === 1);
      const second = request(url, { headers: { accept: MANIFEST_ACCEPT } });
      await waitFor('both clients to wait for the one upstream request', () => tp!.proxy.service.manifestsWaiting === 2);
      leaving.abort(new Error('client 1 left'));
      expect(await first).toBeInstanceOf(Error);
      release();
      const res = await second;
      expect(res.statusCode).toBe(200);
      expect(Buffer.from(await res.body.arrayBuffer()).equals(small.manifest)).toBe(true);
      expect(up.count('GET', /\/manifests\/sha256:/)).toBe(1);
    } finally {
      await up.close();
    }
  });
});

// Blob fills under hostile load (issue 8): at most cache.maxFills fills, and past it a pull streams through
// uncached instead of being refused; at most cache.maxDetachedFills going on with no client; a running fill's size
// counts against cache.maxSize; a client of another repository that joined a fill ending in not-found gets its own
// attempt; a stalled client holds neither the fill nor anyone else. Real Distribution where nothing is injected;
// the fault upstream where a fill must stall or an answer must wait.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { FsBlobStore } from '../../src/cache/fs-store.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { blobBytes, buildLargeLayerImage, type Blob, type BuiltImage } from '../helpers/images.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { waitFor } from '../helpers/eventually.js';
import { BlobClient } from '../helpers/proxy-process.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const STALL_AT = 2 * MiB;
let dist: Distribution;
let slow: FaultUpstream;
/** On Distribution (library/real) and on the fault upstream (library/slow). */
let real: BuiltImage;
/** On Distribution (library/real2) and on the fault upstream (library/slow2). */
let slow2: BuiltImage;
let tp: TestProxy | undefined;

const layerOf = (image: BuiltImage): Blob => image.layers[0]!;
beforeAll(async () => {
  const dir = makeTmpDir();
  const build = (seed: number) => buildLargeLayerImage({ format: 'oci', sizeBytes: 24 * MiB, seed, compression: 'none', dir });
  [real, slow2] = await Promise.all([build(801), build(802)]);
  dist = await startDistribution();
  await pushImage(dist.url, 'library/real', '1.0', real);
  await pushImage(dist.url, 'library/real2', '1.0', slow2);
  slow = await startFaultUpstream();
  slow.add('library/slow', '1.0', real);
  slow.add('library/slow2', '1.0', slow2);
}, 120_000);
afterAll(async () => { await Promise.all([dist?.close(), slow?.close()]); });
afterEach(async () => {
  slow.clearFaults();
  await tp?.close();
  tp = undefined;
});

/** docker.io is the real Distribution; slow.test the fault upstream (path-prefix routing: /v2/slow.test/...). */
async function proxy(cache: Record<string, unknown>): Promise<TestProxy> {
  tp = await startTestProxy({ cache, mirrors: { 'docker.io': { endpoint: [dist.url] }, 'slow.test': { endpoint: [slow.url] } }, upstream: { readTimeout: '5m' } });
  await dist.flushLog();
  dist.resetLog();
  return tp;
}
const realUrl = (p: TestProxy, blob: Blob, repo = 'library/real') => `${p.url}/v2/${repo}/blobs/${blob.digest}`;
const slowUrl = (p: TestProxy, repo: string, blob: Blob) => `${p.url}/v2/slow.test/${repo}/blobs/${blob.digest}`;
const stalled = (blob: Blob) => slow.fault({ method: 'GET', path: new RegExp(`/blobs/${blob.digest}$`) }, { kind: 'stall-body', afterBytes: STALL_AT }, 1);
const tmpFiles = (p: TestProxy) => readdirSync(join(p.cacheDir, 'tmp'));

describe('cache.maxFills (rule 6)', () => {
  it('past the cap a GET is streamed through from Distribution uncached, whole and verified, not refused', async () => {
    const p = await proxy({ maxFills: 1 });
    stalled(layerOf(real));
    const first = new BlobClient(slowUrl(p, 'library/slow', layerOf(real)));
    await first.until(STALL_AT);
    expect(p.proxy.service.fillsInProgress).toBe(1);
    const blob = layerOf(slow2);
    const read = await new BlobClient(realUrl(p, blob, 'library/real2')).done;
    expect({ status: read.status, digest: read.digest, bytes: read.bytes, error: read.error }).toEqual({ status: 200, digest: blob.digest, bytes: blob.size, error: undefined });
    // Not a fill: nothing was cached, the stalled fill is still the only one, and Distribution was asked once.
    expect(p.proxy.service.stats).toMatchObject({ fillsStarted: 1, blobsUncached: 1 });
    expect(await p.proxy.service.stores.blobs.stat(blob.digest)).toBeUndefined();
    await dist.flushLog();
    expect(dist.count('GET', new RegExp(`/blobs/${blob.digest}$`))).toBe(1);
    first.abort();
  });

  it('a ranged GET past the cap gets 206 with exactly its bytes, and the last byte only after the digest matched', async () => {
    const p = await proxy({ maxFills: 1 });
    stalled(layerOf(slow2));
    const first = new BlobClient(slowUrl(p, 'library/slow2', layerOf(slow2)));
    await first.until(STALL_AT);
    const blob = layerOf(real);
    const res = await request(realUrl(p, blob), { headers: { range: `bytes=${blob.size - 1000}-` } });
    const body = Buffer.from(await res.body.arrayBuffer());
    expect({ status: res.statusCode, range: res.headers['content-range'], length: body.length }).toEqual({ status: 206, range: `bytes ${blob.size - 1000}-${blob.size - 1}/${blob.size}`, length: 1000 });
    expect(body.equals((await blobBytes(blob)).subarray(blob.size - 1000))).toBe(true);
    expect(p.proxy.service.stats.blobsUncached).toBe(1);
    first.abort();
  });

  it('past the cap, a corrupt upstream body never reaches the client whole: its last byte is withheld', async () => {
    const p = await proxy({ maxFills: 1 });
    stalled(layerOf(real));
    const first = new BlobClient(slowUrl(p, 'library/slow', layerOf(real)));
    await first.until(STALL_AT);
    const blob = layerOf(slow2);
    slow.fault({ method: 'GET', path: new RegExp(`/blobs/${blob.digest}$`) }, { kind: 'corrupt' }, 1);
    const read = await new BlobClient(slowUrl(p, 'library/slow2', blob)).done;
    expect(read.status).toBe(200);
    expect(read.error).toBeDefined();
    expect(read.bytes).toBeLessThan(blob.size);
    expect(p.proxy.service.stats.blobsUncached).toBe(1);
    first.abort();
  });
});

describe('cache.maxDetachedFills (rule 6)', () => {
  it('a fill whose last client leaves while the cap is reached is cancelled and its temp file removed', async () => {
    const p = await proxy({ maxDetachedFills: 1 });
    stalled(layerOf(real));
    stalled(layerOf(slow2));
    for (const [repo, image] of [['library/slow', real], ['library/slow2', slow2]] as const) {
      const client = new BlobClient(slowUrl(p, repo, layerOf(image)));
      await client.until(STALL_AT);
      client.abort();
      await client.done;
    }
    // Two fills lost their clients; one may go on, the other is stopped.
    await waitFor('one detached fill to be cancelled', () => p.proxy.service.fillsInProgress === 1, 10_000);
    expect(p.proxy.service.stats.fillsCancelled).toBe(1);
    await waitFor('its temp file to be removed', () => tmpFiles(p).length === 1, 10_000);
  });
});

describe('running fills count against cache.maxSize (rule 6)', () => {
  it('a fill that learns its size evicts what it needs before its bytes arrive', async () => {
    const p = await proxy({ maxSize: '40MiB' });
    const cached = layerOf(real);
    const read = await new BlobClient(realUrl(p, cached)).done;
    expect(read.digest).toBe(cached.digest);
    await waitFor('the first blob to be committed', () => p.proxy.service.fillsInProgress === 0);
    const file = new FsBlobStore(p.cacheDir).path(cached.digest);
    expect(existsSync(file)).toBe(true);
    stalled(layerOf(slow2));
    const client = new BlobClient(slowUrl(p, 'library/slow2', layerOf(slow2)));
    await client.until(STALL_AT);
    // 24 MiB cached + 24 MiB on its way > 40 MiB: room is made now, while the second fill is still stalled.
    await waitFor('the older blob to be evicted for the running fill', () => !existsSync(file), 10_000);
    expect(p.proxy.service.fillsInProgress).toBe(1);
    expect(p.proxy.service.index.bytes).toBeLessThanOrEqual(40 * MiB);
    client.abort();
  });
});

describe('joined fills (rule 7)', () => {
  it('a client of another repository that joined a fill ending in not-found gets its own attempt', async () => {
    let answer!: () => void;
    const held = new Promise<void>((resolve) => { answer = resolve; });
    const blob = layerOf(slow2);
    // library/slow does not hold this blob upstream: its request waits, then gets 404.
    slow.fault({ method: 'GET', path: new RegExp(`/library/slow/blobs/${blob.digest}$`) }, { kind: 'hold', until: held }, 1);
    const p = await proxy({});
    const stores = p.proxy.service.stores.blobs;
    const stat = stores.stat.bind(stores);
    let looked = 0;
    stores.stat = async (d) => { const r = await stat(d); looked++; return r; };
    const lacking = request(slowUrl(p, 'library/slow', blob));
    await waitFor('the first request upstream', () => slow.count('GET', new RegExp(`/library/slow/blobs/${blob.digest}$`)) === 1);
    const having = new BlobClient(slowUrl(p, 'library/slow2', blob));
    // The second request joins the running fill right after its store lookup, in the same tick.
    await waitFor('the second request to look the blob up', () => looked === 2);
    await new Promise((r) => setImmediate(r));
    expect(p.proxy.service.stats.fillsStarted).toBe(1);
    answer();
    const notFound = await lacking;
    await notFound.body.dump();
    expect(notFound.statusCode).toBe(404);
    const read = await having.done;
    expect({ status: read.status, digest: read.digest, error: read.error }).toEqual({ status: 200, digest: blob.digest, error: undefined });
    expect(p.proxy.service.stats.fillsStarted).toBe(2);
  });

  it("one client's abort only detaches it: the other client of the fill gets the whole blob", async () => {
    const p = await proxy({});
    const blob = layerOf(real);
    const [leaving, staying] = [new BlobClient(realUrl(p, blob)), new BlobClient(realUrl(p, blob))];
    await leaving.until(1);
    leaving.abort();
    const read = await staying.done;
    expect({ status: read.status, digest: read.digest, error: read.error }).toEqual({ status: 200, digest: blob.digest, error: undefined });
    expect((await leaving.done).error?.message).toBe('client hung up');
    expect(p.proxy.service.stats.fillsStarted).toBe(1);
  });
});

describe('a stalled client (rule 1)', () => {
  it('holds up neither the fill nor another client; it gets the rest from the file when it reads again', async () => {
    const p = await proxy({});
    const blob = layerOf(real);
    const stalledClient = new BlobClient(realUrl(p, blob));
    stalledClient.pause();
    await stalledClient.until(1);
    const fast = await new BlobClient(realUrl(p, blob)).done;
    expect({ digest: fast.digest, error: fast.error }).toEqual({ digest: blob.digest, error: undefined });
    await waitFor('the fill to be committed while one client is stalled', () => p.proxy.service.fillsInProgress === 0);
    expect(stalledClient.received).toBeLessThan(blob.size);
    stalledClient.resume();
    const late = await stalledClient.done;
    expect({ digest: late.digest, bytes: late.bytes, error: late.error }).toEqual({ digest: blob.digest, bytes: blob.size, error: undefined });
    await dist.flushLog();
    expect(dist.count('GET', new RegExp(`/blobs/${blob.digest}$`))).toBe(1);
  });
});

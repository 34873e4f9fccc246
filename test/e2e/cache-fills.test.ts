// Single-flight fills with live fan-out, fills that outlive their client, Range and HEAD on cold and warm blobs —
// against a real CNCF Distribution upstream whose access log counts what the proxy asked for.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { blobBytes, buildLargeLayerImage, type Blob, type BuiltImage } from '../helpers/images.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { BlobClient } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/eventually.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let image: BuiltImage;
let layer: Blob;
let layerData: Buffer;
let dist: Distribution;
let tp: TestProxy | undefined;

const blobPath = (digest = layer.digest) => `/v2/library/big/blobs/${digest}`;
const blobGets = () => dist.count('GET', new RegExp(`/blobs/${layer.digest}$`));

beforeAll(async () => {
  image = await buildLargeLayerImage({ format: 'oci', sizeBytes: 32 * MiB, seed: 301, compression: 'none', dir: makeTmpDir() });
  layer = image.layers[0]!;
  layerData = await blobBytes(layer);
  dist = await startDistribution();
  await pushImage(dist.url, 'library/big', '1.0', image);
}, 120_000);
afterAll(async () => { await dist?.close(); });
afterEach(async () => { await tp?.close(); tp = undefined; });

/** A proxy with an empty cache in front of the real Distribution; the Distribution access log starts empty. */
async function proxyOnDistribution(): Promise<TestProxy> {
  tp = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } } });
  await dist.flushLog();
  dist.resetLog();
  return tp;
}

describe('fills against a real Distribution', () => {
  it('8 concurrent cold clients cause exactly one upstream GET and all get the right bytes', async () => {
    const p = await proxyOnDistribution();
    const clients = Array.from({ length: 8 }, () => new BlobClient(`${p.url}${blobPath()}`));
    const reads = await Promise.all(clients.map((c) => c.done));
    for (const r of reads) expect({ status: r.status, digest: r.digest, bytes: r.bytes, error: r.error }).toEqual({ status: 200, digest: layer.digest, bytes: layer.size, error: undefined });
    await dist.flushLog();
    expect(blobGets()).toBe(1);
    expect(dist.count('HEAD', /\/blobs\//)).toBe(0);
    // All eight were served from that one fill, not from the finished cache.
    expect(p.proxy.service.stats.fillsStarted).toBe(1);
    expect(p.proxy.service.stats.misses.blob).toBe(8);
    expect(p.proxy.service.stats.hits.blob).toBe(0);
  });

  it('the fill goes on after its only client hangs up; the next GET is a hit with no upstream request', async () => {
    const p = await proxyOnDistribution();
    const first = new BlobClient(`${p.url}${blobPath()}`);
    await first.until(1);
    first.abort();
    // The client's own abort ends its read (done resolves with the error it saw), part-way through the blob.
    const aborted = await first.done;
    expect({ status: aborted.status, error: aborted.error?.message }).toEqual({ status: 200, error: 'client hung up' });
    expect(aborted.bytes).toBeLessThan(layer.size);
    await waitFor('the fill to finish', () => p.proxy.service.fillsInProgress === 0);
    expect(await p.proxy.service.stores.blobs.stat(layer.digest)).toMatchObject({ size: layer.size });
    const again = await new BlobClient(`${p.url}${blobPath()}`).done;
    expect([again.status, again.digest]).toEqual([200, layer.digest]);
    await dist.flushLog();
    expect(blobGets()).toBe(1);
    expect(p.proxy.service.stats.hits.blob).toBe(1);
  });

  it('HEAD on a cold blob is answered by an upstream HEAD, with no download', async () => {
    const p = await proxyOnDistribution();
    const res = await request(`${p.url}${blobPath()}`, { method: 'HEAD' });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(layer.size));
    expect(res.headers['docker-content-digest']).toBe(layer.digest);
    await dist.flushLog();
    expect(dist.count('HEAD', new RegExp(`/blobs/${layer.digest}$`))).toBe(1);
    expect(blobGets()).toBe(0);
    expect(p.proxy.service.fillsInProgress).toBe(0);
    expect(await p.proxy.service.stores.blobs.stat(layer.digest)).toBeUndefined();
  });

  it('Range on a cold and then a warm blob: 206 with Content-Range and the right bytes; unsatisfiable is 416', async () => {
    const p = await proxyOnDistribution();
    const get = async (range: string) => {
      const res = await request(`${p.url}${blobPath()}`, { headers: { range } });
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    };
    const size = layer.size;
    const cases: [string, number, number][] = [['bytes=1000-1999', 1000, 1999], [`bytes=${size - 10}-`, size - 10, size - 1], ['bytes=-100', size - 100, size - 1], [`bytes=${20 * MiB}-${size + 999}`, 20 * MiB, size - 1]];
    for (const phase of ['cold', 'warm']) {
      if (phase === 'warm') {
        await waitFor('the fill to finish', () => p.proxy.service.fillsInProgress === 0);
        expect(await p.proxy.service.stores.blobs.stat(layer.digest)).toBeDefined();
      }
      for (const [range, start, end] of cases) {
        const res = await get(range);
        expect({ phase, range, status: res.status, contentRange: res.headers['content-range'], length: res.headers['content-length'] })
          .toEqual({ phase, range, status: 206, contentRange: `bytes ${start}-${end}/${size}`, length: String(end - start + 1) });
        expect(res.body.equals(layerData.subarray(start, end + 1)), `${phase} ${range} bytes`).toBe(true);
      }
      const bad = await get(`bytes=${size}-`);
      expect({ phase, status: bad.status, contentRange: bad.headers['content-range'] }).toEqual({ phase, status: 416, contentRange: `bytes */${size}` });
    }
    await dist.flushLog();
    expect(blobGets()).toBe(1);
  });
});

describe('late joiners and cold ranges (an upstream that stalls half-way, then a second endpoint)', () => {
  let slow: FaultUpstream;
  let spare: FaultUpstream;
  const half = 16 * MiB;

  beforeAll(async () => {
    [slow, spare] = await Promise.all([startFaultUpstream(), startFaultUpstream()]);
    for (const up of [slow, spare]) up.add('library/big', '1.0', image);
  });
  afterAll(async () => { await Promise.all([slow?.close(), spare?.close()]); });

  it('a client that joins after half the blob arrived gets it so far at once, then follows to the right end', async () => {
    slow.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'stall-body', afterBytes: half }, 1);
    tp = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [slow.url, spare.url] } }, upstream: { readTimeout: '4s' } });
    const url = `${tp.url}${blobPath()}`;
    const first = new BlobClient(url);
    await first.until(half);
    expect(first.received).toBe(half);
    // The fill is stalled at `half`: a late joiner receives those bytes from the fill, before any resume.
    const late = new BlobClient(url);
    await late.until(half);
    expect(late.received).toBe(half);
    // A cold range inside what has arrived does not wait for the rest of the blob.
    const ranged = await request(url, { headers: { range: `bytes=${half - 1000}-${half - 1}` } });
    expect(ranged.statusCode).toBe(206);
    expect(Buffer.from(await ranged.body.arrayBuffer()).equals(layerData.subarray(half - 1000, half))).toBe(true);
    expect(spare.count('GET', /\/blobs\//)).toBe(0);
    expect(tp.proxy.service.fillsInProgress).toBe(1);
    const [a, b] = await Promise.all([first.done, late.done]);
    for (const r of [a, b]) expect({ status: r.status, digest: r.digest, error: r.error }).toEqual({ status: 200, digest: layer.digest, error: undefined });
    expect(slow.count('GET', /\/blobs\//)).toBe(1);
    expect(spare.requests().filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).map((r) => r.headers.range)).toEqual([`bytes=${half}-`]);
  });
});

describe('clients joining all through a slow fill', () => {
  let throttled: FaultUpstream;
  beforeAll(async () => {
    throttled = await startFaultUpstream();
    throttled.add('library/big', '1.0', image);
  });
  afterAll(async () => { await throttled?.close(); });

  it('a client joining every 3 MiB, some pausing past the window: every body is the blob, from one upstream GET', async () => {
    // ~1.3 s for the 32 MiB fill: joiners after the first 4 MiB start behind the in-memory window and read the file,
    // then catch up with the fill; paused clients fall behind it again and drain in bursts.
    throttled.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'throttle', bytesPerSecond: 24 * MiB }, 1);
    tp = await startTestProxy({ mirrors: { 'docker.io': { endpoint: [throttled.url] } } });
    const url = `${tp.url}${blobPath()}`;
    const clients = [new BlobClient(url)];
    for (let at = 3 * MiB; at < layer.size; at += 3 * MiB) {
      await clients[0]!.until(at);
      const c = new BlobClient(url);
      if (clients.length % 3 === 0) {
        c.pause();
        setTimeout(() => c.resume(), 250);
      }
      clients.push(c);
    }
    const reads = await Promise.all(clients.map((c) => c.done));
    expect(reads.length).toBeGreaterThanOrEqual(10);
    for (const r of reads) expect({ status: r.status, digest: r.digest, bytes: r.bytes, error: r.error }).toEqual({ status: 200, digest: layer.digest, bytes: layer.size, error: undefined });
    expect(throttled.count('GET', /\/blobs\//)).toBe(1);
  });
});

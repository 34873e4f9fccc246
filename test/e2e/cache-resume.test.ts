// An endpoint that breaks off mid-body (reset, or silence past upstream.readTimeout) is resumed from the next
// endpoint with Range — or by re-reading and skipping when that endpoint ignores Range — and the client sees one
// uninterrupted, correct stream. Corrupt bytes never end cleanly, are never cached, and are refetched elsewhere.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream, type RecordedRequest } from '../helpers/fault-upstream.js';
import { buildLargeLayerImage, type Blob, type BuiltImage } from '../helpers/images.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { BlobClient } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/eventually.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const BREAK_AT = 5 * MiB + 12_345;
let image: BuiltImage;
let layer: Blob;
let first: FaultUpstream;
let second: FaultUpstream;
let dist: Distribution;
let tp: TestProxy | undefined;

beforeAll(async () => {
  image = await buildLargeLayerImage({ format: 'oci', sizeBytes: 16 * MiB, seed: 302, compression: 'none', dir: makeTmpDir() });
  layer = image.layers[0]!;
  [first, second, dist] = await Promise.all([startFaultUpstream(), startFaultUpstream(), startDistribution()]);
  first.add('library/big', '1.0', image);
  second.add('library/big', '1.0', image);
  await pushImage(dist.url, 'library/big', '1.0', image);
}, 120_000);
afterAll(async () => { await Promise.all([first?.close(), second?.close(), dist?.close()]); });
afterEach(async () => {
  first.clearFaults();
  second.clearFaults();
  await tp?.close();
  tp = undefined;
});

const url = () => `${tp!.url}/v2/library/big/blobs/${layer.digest}`;
/** Blob GETs an upstream received after `mark` (an index into its requests()). */
const blobGetsSince = (up: FaultUpstream, mark: number): RecordedRequest[] => up.requests().slice(mark).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));

async function proxyOn(endpoints: string[]): Promise<TestProxy> {
  tp = await startTestProxy({ mirrors: { 'docker.io': { endpoint: endpoints } }, upstream: { readTimeout: '1s' } });
  return tp;
}

function expectWhole(r: Awaited<BlobClient['done']>): void {
  expect({ status: r.status, digest: r.digest, bytes: r.bytes, error: r.error?.message }).toEqual({ status: 200, digest: layer.digest, bytes: layer.size, error: undefined });
}

describe('resume from the next endpoint', () => {
  it('reset mid-body → resumed from a real Distribution with Range; one uninterrupted, correct stream', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'reset-body', afterBytes: BREAK_AT }, 1);
    const p = await proxyOn([first.url, dist.url]);
    await dist.flushLog();
    dist.resetLog();
    expectWhole(await new BlobClient(url()).done);
    await dist.flushLog();
    // The reset may discard bytes still in the proxy's receive queue (the kernel drops them on RST), so the
    // proxy resumes from what it actually received: its warning says where, and is never past the break.
    const warned = p.warnings(/resuming from the next endpoint/);
    expect(warned).toHaveLength(1);
    const at = Number(warned[0]!.at);
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThanOrEqual(BREAK_AT);
    // Distribution's access log has no request headers: a 206 carrying exactly the rest shows the Range it got.
    expect(dist.accessLog().filter((l) => l.method === 'GET' && l.path.includes('/blobs/')))
      .toEqual([{ method: 'GET', path: `/v2/library/big/blobs/${layer.digest}`, status: 206, bytes: layer.size - at }]);
    // Clients finish once the digest is verified; fsync and rename follow behind them.
    await waitFor('the fill to be stored', () => p.proxy.service.fillsInProgress === 0);
    expect(await p.proxy.service.stores.blobs.stat(layer.digest)).toMatchObject({ size: layer.size });
  });

  it('stall mid-body (no bytes for readTimeout) → resumed from the next endpoint with Range: bytes=<offset>-', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'stall-body', afterBytes: BREAK_AT }, 1);
    const mark = second.requests().length;
    const p = await proxyOn([first.url, second.url]);
    expectWhole(await new BlobClient(url()).done);
    // What ended the first transfer was the read timeout (silence), not a reset.
    expect(p.warnings(/resuming from the next endpoint/).map((l) => String(l.reason))).toEqual([expect.stringMatching(/timeout/i)]);
    expect(blobGetsSince(second, mark).map((r) => r.headers.range)).toEqual([`bytes=${BREAK_AT}-`]);
  });

  it('the next endpoint ignores Range and answers 200: the fill skips what it has; the bytes are still right', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'reset-body', afterBytes: BREAK_AT }, 1);
    second.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'ignore-range' }, 1);
    const mark = second.requests().length;
    const p = await proxyOn([first.url, second.url]);
    expectWhole(await new BlobClient(url()).done);
    expect(blobGetsSince(second, mark).map((r) => r.headers.range)).toEqual([`bytes=${BREAK_AT}-`]);
    // Clients finish once the digest is verified; fsync and rename follow behind them.
    await waitFor('the fill to be stored', () => p.proxy.service.fillsInProgress === 0);
    expect(await p.proxy.service.stores.blobs.stat(layer.digest)).toMatchObject({ size: layer.size });
  });

  it('a client following the fill while it resumes also gets the right bytes (late joiner across the break)', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'stall-body', afterBytes: BREAK_AT }, 1);
    await proxyOn([first.url, second.url]);
    const a = new BlobClient(url());
    await a.until(BREAK_AT);
    const b = new BlobClient(url());
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expectWhole(ra);
    expectWhole(rb);
  });
});

describe('corrupt bytes', () => {
  it('the client never sees a clean end; the fill is retried on the next endpoint and the next client is a hit', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'corrupt' });
    const marks = [first.requests().length, second.requests().length] as const;
    const p = await proxyOn([first.url, second.url]);
    const bad = await new BlobClient(url()).done;
    expect(bad.status).toBe(200);
    expect(bad.error, 'the body must fail, not end cleanly').toBeDefined();
    expect(bad.bytes).toBeLessThan(layer.size);
    expect(bad.digest).not.toBe(layer.digest);
    // The retry runs on its own, without the lying endpoint.
    await waitFor('the retry fill', () => p.proxy.service.fillsInProgress === 0);
    // Clients finish once the digest is verified; fsync and rename follow behind them.
    await waitFor('the fill to be stored', () => p.proxy.service.fillsInProgress === 0);
    expect(await p.proxy.service.stores.blobs.stat(layer.digest)).toMatchObject({ size: layer.size });
    expect(blobGetsSince(first, marks[0])).toHaveLength(1);
    expect(blobGetsSince(second, marks[1]).map((r) => r.headers.range)).toEqual([undefined]);
    expect(p.warnings(/corrupt blob/)).toHaveLength(1);
    const good = await new BlobClient(url()).done;
    expectWhole(good);
    expect(blobGetsSince(first, marks[0])).toHaveLength(1);
    expect(blobGetsSince(second, marks[1])).toHaveLength(1);
    expect(p.proxy.service.stats.hits.blob).toBe(1);
  });

  it('when every endpoint sends corrupt bytes nothing is cached, not even a temp file; a later good endpoint serves', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'corrupt' });
    second.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'corrupt', atByte: 7 });
    const p = await proxyOn([first.url, second.url]);
    const bad = await new BlobClient(url()).done;
    expect(bad.error).toBeDefined();
    expect(bad.bytes).toBeLessThan(layer.size);
    await waitFor('the retry fill to fail', () => p.proxy.service.fillsInProgress === 0);
    expect(p.proxy.service.stats.fillsFailed).toBe(2);
    expect(await p.proxy.service.stores.blobs.stat(layer.digest)).toBeUndefined();
    expect(readdirSync(join(p.cacheDir, 'tmp'))).toEqual([]);
    expect(readdirSync(join(p.cacheDir, 'blobs'), { recursive: true }).filter((f) => String(f).includes(layer.digest.slice(7)))).toEqual([]);
    first.clearFaults();
    second.clearFaults();
    expectWhole(await new BlobClient(url()).done);
  });
});

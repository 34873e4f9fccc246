// SIGTERM to the real `ocimirror serve` process: it stops accepting at once, lets a response already in flight
// finish within server.shutdownGrace, then aborts the fill still running (no temp file, no blob left) and exits 0.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/cache/fs-store.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildLargeLayerImage, type Blob } from '../helpers/images.js';
import { isRefused } from '../helpers/ports.js';
import { BlobClient, startProxyProcess, type ConfigDoc, type ProxyProcess } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/eventually.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const STALL_AT = 2 * MiB;
let up: FaultUpstream;
let cached: Blob;
let stalled: Blob;
const dirs: string[] = [];
const processes: ProxyProcess[] = [];

beforeAll(async () => {
  // 64 MiB: far more than socket buffers hold, so a paused client really is mid-response.
  const big = await buildLargeLayerImage({ format: 'oci', sizeBytes: 64 * MiB, seed: 1201, compression: 'none', dir: makeTmpDir() });
  const other = await buildLargeLayerImage({ format: 'oci', sizeBytes: 8 * MiB, seed: 1202, compression: 'none', dir: makeTmpDir() });
  cached = big.layers[0]!;
  stalled = other.layers[0]!;
  up = await startFaultUpstream();
  up.add('library/big', '1.0', big);
  up.add('library/big', '2.0', other);
  up.fault({ method: 'GET', path: new RegExp(`/blobs/${stalled.digest}$`) }, { kind: 'stall-body', afterBytes: STALL_AT });
}, 120_000);
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill9()));
  await up?.close();
  for (const d of dirs) await removeTmpDir(d);
});

async function serve(server: ConfigDoc): Promise<ProxyProcess> {
  const cacheDir = makeTmpDir('ocimirror-shutdown-cache-');
  dirs.push(cacheDir);
  // A long read timeout: the stalled upstream keeps its fill running until the shutdown aborts it.
  const p = await startProxyProcess({ server, mirrors: { 'docker.io': { endpoint: [up.url] } }, upstream: { readTimeout: '5m' } }, cacheDir);
  processes.push(p);
  return p;
}

const blobUrl = (p: ProxyProcess, blob: Blob) => `${p.url}/v2/library/big/blobs/${blob.digest}`;
const tmpFiles = (p: ProxyProcess) => readdirSync(join(p.cacheDir, 'tmp'));
const stored = (p: ProxyProcess, blob: Blob) => { try { return statSync(new FsBlobStore(p.cacheDir).path(blob.digest)).size; } catch { return undefined; } };
const logged = (p: ProxyProcess, msg: string) => p.logs().filter((l) => l.msg === msg);

/** A fill that stalls upstream after STALL_AT bytes, with one client following it; resolves once it is on disk. */
async function stalledFill(p: ProxyProcess): Promise<BlobClient> {
  const client = new BlobClient(blobUrl(p, stalled));
  await client.until(STALL_AT - 1);
  await waitFor('the fill\'s temp file', () => tmpFiles(p).length === 1);
  return client;
}

describe('SIGTERM', () => {
  it('refuses new connections, lets an in-flight response finish, then aborts the running fill and exits 0', async () => {
    const p = await serve({ shutdownGrace: '10m' });
    expect((await new BlobClient(blobUrl(p, cached)).done).digest).toBe(cached.digest);
    await waitFor('the first blob to be committed', () => stored(p, cached) === cached.size);

    const reader = new BlobClient(blobUrl(p, cached));
    reader.pause();
    await reader.until(1);
    const follower = await stalledFill(p);

    p.signal('SIGTERM');
    await waitFor('the shutdown to start', () => logged(p, 'shutting down: no new connections; in-flight responses may finish').length === 1);
    await waitFor('the listening socket to close', () => isRefused(Number(new URL(p.url).port)));
    expect(reader.received).toBeLessThan(cached.size);
    reader.resume();
    const read = await reader.done;
    expect(read.error).toBeUndefined();
    expect(read).toMatchObject({ status: 200, bytes: cached.size, digest: cached.digest });
    expect(p.logs().filter((l) => l.msg === 'stopped'), 'still within the grace period: the fill runs on').toEqual([]);

    // A second signal ends the grace period: the stalled fill is aborted and its client cut off.
    p.signal('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const cut = await follower.done;
    expect(cut.error, 'the client of an aborted fill must not see a clean end').toBeDefined();
    expect(cut.bytes).toBeLessThan(stalled.size);
    expect(logged(p, 'stopped')).toEqual([expect.objectContaining({ fillsAborted: 1 })]);
    expect(tmpFiles(p)).toEqual([]);
    expect(stored(p, stalled)).toBeUndefined();
    expect(stored(p, cached)).toBe(cached.size);
  });

  it('ends the grace period by itself after server.shutdownGrace', async () => {
    const p = await serve({ shutdownGrace: '1s' });
    const follower = await stalledFill(p);
    p.signal('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect((await follower.done).error).toBeDefined();
    const [shutdown] = logged(p, 'shutting down: no new connections; in-flight responses may finish');
    expect(shutdown).toMatchObject({ signal: 'SIGTERM', graceMs: 1000 });
    expect(logged(p, 'stopped')).toEqual([expect.objectContaining({ fillsAborted: 1, connectionsCut: 1 })]);
    expect(tmpFiles(p)).toEqual([]);
    expect(stored(p, stalled)).toBeUndefined();
  });
});

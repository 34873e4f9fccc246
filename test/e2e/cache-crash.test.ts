// kill -9 of the real `ocimirror serve` process in the middle of a fill, then a restart on the same cache dir:
// the partial file is removed, no partial blob is ever served, and the next pull fetches and verifies it whole.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/cache/fs-store.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildLargeLayerImage, type Blob } from '../helpers/images.js';
import { BlobClient, startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/eventually.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const STALL_AT = 10 * MiB;
let up: FaultUpstream;
let layer: Blob;
let config: Blob;
let cacheDir: string;
const processes: ProxyProcess[] = [];

beforeAll(async () => {
  const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: 32 * MiB, seed: 501, compression: 'none', dir: makeTmpDir() });
  layer = image.layers[0]!;
  config = image.config;
  up = await startFaultUpstream();
  up.add('library/big', '1.0', image);
  cacheDir = makeTmpDir('ocimirror-crash-cache-');
}, 120_000);
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  await up?.close();
  await removeTmpDir(cacheDir);
});

async function serve(): Promise<ProxyProcess> {
  // A long read timeout: the stalled upstream keeps the fill half-done until the kill.
  const p = await startProxyProcess({ mirrors: { 'docker.io': { endpoint: [up.url] } }, upstream: { readTimeout: '5m' } }, cacheDir);
  processes.push(p);
  return p;
}

const tmpFiles = () => readdirSync(join(cacheDir, 'tmp')).map((f) => ({ name: f, size: statSync(join(cacheDir, 'tmp', f)).size }));
const blobFile = () => new FsBlobStore(cacheDir).path(layer.digest);
const exists = (file: string) => { try { statSync(file); return true; } catch { return false; } };

describe('kill -9 during a fill', () => {
  it('leaves only a temp file, which the restarted proxy removes; the next pull is whole and verified', async () => {
    up.fault({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`) }, { kind: 'stall-body', afterBytes: STALL_AT }, 1);
    const first = await serve();
    const url = (p: ProxyProcess, blob = layer) => `${p.url}/v2/library/big/blobs/${blob.digest}`;
    // A blob committed before the crash must survive it and be found by the rebuilt index.
    expect((await new BlobClient(url(first, config)).done).digest).toBe(config.digest);
    await waitFor('the config blob to be committed', () => exists(new FsBlobStore(cacheDir).path(config.digest)));
    const client = new BlobClient(url(first));
    await client.until(STALL_AT);
    // Bytes reach the disk in batches of half a MiB: all but the last batch of a stalled fill are written.
    await waitFor('the partial write on disk', () => tmpFiles().some((f) => f.size >= STALL_AT - MiB));
    expect(exists(blobFile())).toBe(false);

    await first.kill9();
    const cut = await client.done.catch((e: unknown) => ({ error: e as Error, bytes: client.received }));
    expect(cut.error, 'the client of the killed proxy must not see a clean end').toBeDefined();
    expect(tmpFiles().length, 'kill -9 leaves the partial file behind').toBeGreaterThan(0);

    const mark = up.requests().length;
    const second = await serve();
    const ready = second.logs().find((l) => l.msg === 'cache ready');
    expect(ready).toMatchObject({ recovered: 1, entries: 1, bytes: config.size });
    expect(tmpFiles()).toEqual([]);
    expect(exists(blobFile())).toBe(false);

    const read = await new BlobClient(url(second)).done;
    expect({ status: read.status, digest: read.digest, bytes: read.bytes, error: read.error }).toEqual({ status: 200, digest: layer.digest, bytes: layer.size, error: undefined });
    // A fresh fill from byte 0: nothing of the partial file was trusted.
    const gets = up.requests().slice(mark).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    expect(gets.map((r) => r.headers.range)).toEqual([undefined]);
    const warm = await new BlobClient(url(second, config)).done;
    expect(warm.digest).toBe(config.digest);
    expect(up.requests().slice(mark).filter((r) => r.path.includes(config.digest))).toEqual([]);
    await waitFor('the blob to be committed', () => exists(blobFile()));
    expect(statSync(blobFile()).size).toBe(layer.size);
  });
});

// cache.maxSize: least-recently-used blobs are evicted (their files deleted) as new ones arrive; a blob a client
// is still reading is deleted only after that read ends; and the LRU order survives a restart.
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/cache/fs-store.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildLargeLayerImage, type Blob } from '../helpers/images.js';
import { BlobClient, startRestartableProxy, type RestartableProxy } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/eventually.js';
import { makeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let up: FaultUpstream;
let proxy: RestartableProxy | undefined;

/** A one-blob image in its own repository on the upstream; returns the layer. */
async function layerOf(name: string, sizeBytes: number, seed: number, dir: string): Promise<Blob> {
  const image = await buildLargeLayerImage({ format: 'oci', sizeBytes, seed, compression: 'none', dir });
  up.add(`evict/${name}`, '1.0', image);
  return image.layers[0]!;
}

beforeAll(async () => { up = await startFaultUpstream(); });
afterAll(async () => { await up?.close(); });
afterEach(async () => { await proxy?.close(); proxy = undefined; });

async function startWith(maxSize: string): Promise<RestartableProxy> {
  proxy = await startRestartableProxy({ mirrors: { 'docker.io': { endpoint: [up.url] } }, cache: { maxSize } });
  return proxy;
}
const url = (name: string, blob: Blob) => `${proxy!.url}/v2/evict/${name}/blobs/${blob.digest}`;
const fileOf = (blob: Blob) => new FsBlobStore(proxy!.cacheDir).path(blob.digest);

async function fetchWhole(name: string, blob: Blob): Promise<void> {
  const r = await new BlobClient(url(name, blob)).done;
  expect({ name, status: r.status, digest: r.digest, error: r.error }).toEqual({ name, status: 200, digest: blob.digest, error: undefined });
  await waitFor(`${name} to be committed`, () => proxy!.running.service.fillsInProgress === 0);
}

describe('eviction under cache.maxSize', () => {
  it('evicts the least recently used blob, and defers deleting one that a slow client is still reading', async () => {
    const dir = makeTmpDir();
    // A is big enough that a paused client cannot have it all in socket buffers: its file stays open while paused.
    const a = await layerOf('a', 24 * MiB, 401, dir);
    const b = await Promise.all([1, 2, 3, 4].map((i) => layerOf(`b${i}`, 12 * MiB, 410 + i, dir)));
    const p = await startWith('60MiB');
    // Every deletion the index asks for: it asks when it evicts (synchronously), or when the last reader is done.
    const store = p.running.service.stores.blobs;
    const deleteBlob = store.delete.bind(store);
    const deleted: string[] = [];
    store.delete = async (digest) => { deleted.push(digest); await deleteBlob(digest); };
    await fetchWhole('a', a);
    await fetchWhole('b1', b[0]!);

    const reader = new BlobClient(url('a', a));
    await reader.until(MiB);
    reader.pause();

    await fetchWhole('b2', b[1]!);
    expect([a, ...b.slice(0, 2)].map((x) => existsSync(fileOf(x)))).toEqual([true, true, true]);
    await fetchWhole('b3', b[2]!);
    // LRU is b1 (a was used by the reader after b1 arrived): b1 goes.
    await waitFor('b1 to be deleted', () => !existsSync(fileOf(b[0]!)), 5000);
    expect(existsSync(fileOf(a))).toBe(true);
    await fetchWhole('b4', b[3]!);
    // a is next, but it is being read: out of the index, and its deletion not even asked for.
    await waitFor('a to be evicted', () => p.running.service.stats.evictions === 2, 5000);
    expect(p.running.service.index.has('blob', a.digest)).toBe(false);
    expect(deleted, 'a blob being read must not be deleted').toEqual([b[0]!.digest]);
    expect(existsSync(fileOf(a))).toBe(true);
    expect(reader.received).toBeLessThan(a.size);

    reader.resume();
    const read = await reader.done;
    expect({ digest: read.digest, bytes: read.bytes, error: read.error }).toEqual({ digest: a.digest, bytes: a.size, error: undefined });
    await waitFor('a to be deleted once its read ended', () => !existsSync(fileOf(a)), 5000);
    expect(deleted).toEqual([b[0]!.digest, a.digest]);
    expect(b.slice(1).map((x) => existsSync(fileOf(x)))).toEqual([true, true, true]);
    expect(p.running.service.stats.evictions).toBe(2);
    expect(p.running.service.index.bytes).toBeLessThanOrEqual(60 * MiB);
  });

  it('keeps the LRU order across a restart: A filled, B filled, A read → after restart, C evicts B', async () => {
    const dir = makeTmpDir();
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n, i) => layerOf(`r1${n}`, MiB, 420 + i, dir)));
    const p = await startWith('2500KiB');
    await fetchWhole('r1a', a!);
    await fetchWhole('r1b', b!);
    await fetchWhole('r1a', a!);
    await p.restart();
    await fetchWhole('r1c', c!);
    await waitFor('one eviction', () => [a, b, c].filter((x) => existsSync(fileOf(x!))).length === 2, 5000);
    expect({ a: existsSync(fileOf(a!)), b: existsSync(fileOf(b!)), c: existsSync(fileOf(c!)) }).toEqual({ a: true, b: false, c: true });
  });

  it('keeps the LRU order across a restart when a blob is read again within a minute: A, B, A read → C evicts B', async () => {
    const dir = makeTmpDir();
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n, i) => layerOf(`r2${n}`, MiB, 430 + i, dir)));
    const p = await startWith('2500KiB');
    await fetchWhole('r2a', a!);
    await fetchWhole('r2b', b!);
    await fetchWhole('r2a', a!);
    await fetchWhole('r2b', b!);
    await fetchWhole('r2a', a!);
    // In memory the order is B then A: C would evict B.
    await p.restart();
    await fetchWhole('r2c', c!);
    await waitFor('one eviction', () => [a, b, c].filter((x) => existsSync(fileOf(x!))).length === 2, 5000);
    expect({ a: existsSync(fileOf(a!)), b: existsSync(fileOf(b!)), c: existsSync(fileOf(c!)) }).toEqual({ a: true, b: false, c: true });
  });
});

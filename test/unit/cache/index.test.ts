// CacheIndex: byte-bounded LRU over the store, eviction deletes files, pinned blobs are deleted only when their
// last reader is done, and load() rebuilds the order from the persisted access times.
import type { Readable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { BlobStore, BlobWriter, StoredBlob } from '../../../src/cache/blob-store.js';
import { CacheIndex } from '../../../src/cache/index.js';

const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

/** Only what the index uses: list (for load), delete and touch, recorded. */
class RecordingStore implements BlobStore {
  deleted: string[] = [];
  touched: string[] = [];
  constructor(private readonly blobs: StoredBlob[] = []) {}
  async *list(): AsyncIterable<StoredBlob> { yield* this.blobs; }
  async delete(digest: string): Promise<void> { this.deleted.push(digest); }
  async touch(digest: string): Promise<void> { this.touched.push(digest); }
  stat(): Promise<StoredBlob | undefined> { throw new Error('not used'); }
  open(): Promise<Readable> { throw new Error('not used'); }
  readAll(): Promise<Buffer | undefined> { throw new Error('not used'); }
  put(): Promise<StoredBlob> { throw new Error('not used'); }
  createWriter(): Promise<BlobWriter> { throw new Error('not used'); }
  recover(): Promise<number> { throw new Error('not used'); }
}

const tick = () => new Promise((r) => setImmediate(r));
const silent = pino({ level: 'silent' });

describe('CacheIndex', () => {
  it('evicts least recently used first, by bytes, and deletes the files', async () => {
    const store = new RecordingStore();
    const evicted: string[] = [];
    const index = new CacheIndex(store, 100, silent, { onEvict: (digest) => evicted.push(digest) });
    index.add(d(1), 40);
    index.add(d(2), 40);
    expect(index.use(d(1))).toBe(40);
    index.add(d(3), 40);
    await tick();
    expect(evicted).toEqual([d(2)]);
    expect(store.deleted).toEqual([d(2)]);
    expect([index.has(d(1)), index.has(d(2)), index.has(d(3))]).toEqual([true, false, true]);
    expect(index.bytes).toBe(80);
    expect(store.touched).toEqual([d(1)]);
  });

  it('a pinned blob that is evicted is deleted only after its last reader released it', async () => {
    const store = new RecordingStore();
    const index = new CacheIndex(store, 100, silent);
    index.add(d(1), 60);
    const unpinA = index.pin(d(1));
    const unpinB = index.pin(d(1));
    index.add(d(2), 60);
    await tick();
    expect(index.has(d(1))).toBe(false);
    expect(store.deleted).toEqual([]);
    unpinA();
    unpinA(); // releasing twice counts once
    await tick();
    expect(store.deleted).toEqual([]);
    unpinB();
    await tick();
    expect(store.deleted).toEqual([d(1)]);
  });

  it('a blob re-added while its deletion waited for a reader is kept', async () => {
    const store = new RecordingStore();
    const index = new CacheIndex(store, 100, silent);
    index.add(d(1), 60);
    const unpin = index.pin(d(1));
    index.add(d(2), 60);
    index.add(d(1), 30);
    unpin();
    await tick();
    expect(index.has(d(1))).toBe(true);
    expect(store.deleted).not.toContain(d(1));
  });

  it('a blob larger than the whole cap is not kept (deleted once nobody reads it)', async () => {
    const store = new RecordingStore();
    const index = new CacheIndex(store, 100, silent);
    index.add(d(1), 50);
    const unpin = index.pin(d(9));
    index.add(d(9), 500);
    await tick();
    expect(index.has(d(9))).toBe(false);
    expect(index.has(d(1))).toBe(true);
    expect(store.deleted).toEqual([]);
    unpin();
    await tick();
    expect(store.deleted).toEqual([d(9)]);
  });

  it('load() rebuilds the LRU order from access times, oldest first', async () => {
    const store = new RecordingStore([
      { digest: d(1), size: 40, accessedAt: 3000 },
      { digest: d(2), size: 40, accessedAt: 1000 },
      { digest: d(3), size: 10, accessedAt: 2000 },
    ]);
    const index = new CacheIndex(store, 100, silent);
    expect(await index.load()).toEqual({ entries: 3, bytes: 90 });
    index.add(d(4), 40);
    await tick();
    // d(2) is the least recently accessed; evicting it (40) is enough.
    expect(store.deleted).toEqual([d(2)]);
    index.add(d(5), 20);
    await tick();
    expect(store.deleted).toEqual([d(2), d(3)]);
  });
});

// CacheIndex: byte- and count-bounded LRU over every kind of entry, eviction deletes from the entry's own store,
// pinned entries are deleted only when their last reader is done, and load() rebuilds the order from the
// persisted access times.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CacheIndex, type EntryKind, type EntryStore, type IndexedEntry } from '../../../src/cache/lru-index.js';

const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

/** Records what the index asks of each kind's store. */
class RecordingStore implements EntryStore {
  deleted: string[] = [];
  touched: string[] = [];
  async delete(id: string): Promise<void> { this.deleted.push(id); }
  async touch(id: string): Promise<void> { this.touched.push(id); }
}

function makeIndex(maxSize: number, opts: { maxEntries?: number; onEvict?: (kind: EntryKind, id: string) => void } = {}) {
  const stores = { blob: new RecordingStore(), manifest: new RecordingStore(), tag: new RecordingStore() };
  const index = new CacheIndex(stores, { maxSize, maxEntries: opts.maxEntries ?? 1000 }, pino({ level: 'silent' }), opts.onEvict ? { onEvict: opts.onEvict } : {});
  return { index, stores, blobs: stores.blob };
}

async function* entries(list: IndexedEntry[]): AsyncIterable<IndexedEntry> { yield* list; }

const tick = () => new Promise((r) => setImmediate(r));

describe('CacheIndex', () => {
  it('evicts least recently used first, by bytes, and deletes the files', async () => {
    const evicted: string[] = [];
    const { index, blobs } = makeIndex(100, { onEvict: (_k, id) => evicted.push(id) });
    index.add('blob', d(1), 40);
    index.add('blob', d(2), 40);
    expect(index.use('blob', d(1))).toBe(40);
    index.add('blob', d(3), 40);
    await tick();
    expect(evicted).toEqual([d(2)]);
    expect(blobs.deleted).toEqual([d(2)]);
    expect([index.has('blob', d(1)), index.has('blob', d(2)), index.has('blob', d(3))]).toEqual([true, false, true]);
    expect(index.bytes).toBe(80);
    expect(blobs.touched).toEqual([d(1)]);
  });

  it('kinds are distinct: a manifest and a blob with the same digest are two entries, each deleted from its own store', async () => {
    const { index, stores } = makeIndex(100);
    index.add('blob', d(1), 30);
    expect(index.has('manifest', d(1))).toBe(false);
    expect(index.use('manifest', d(1))).toBeUndefined();
    index.add('manifest', d(1), 30);
    index.add('tag', 'docker.io/library/x:1', 30);
    index.add('blob', d(2), 30);
    await tick();
    expect(stores.blob.deleted).toEqual([d(1)]);
    expect(stores.manifest.deleted).toEqual([]);
    index.add('blob', d(3), 30);
    await tick();
    expect(stores.manifest.deleted).toEqual([d(1)]);
    index.add('blob', d(4), 30);
    await tick();
    expect(stores.tag.deleted).toEqual(['docker.io/library/x:1']);
  });

  it('the number of entries is bounded too, whatever their size', async () => {
    const { index, blobs } = makeIndex(1_000_000, { maxEntries: 3 });
    for (let i = 1; i <= 5; i++) index.add('blob', d(i), 1);
    await tick();
    expect(index.entries).toBe(3);
    expect(blobs.deleted).toEqual([d(1), d(2)]);
  });

  it('a pinned blob that is evicted is deleted only after its last reader released it', async () => {
    const { index, blobs } = makeIndex(100);
    index.add('blob', d(1), 60);
    const unpinA = index.pin('blob', d(1));
    const unpinB = index.pin('blob', d(1));
    index.add('blob', d(2), 60);
    await tick();
    expect(index.has('blob', d(1))).toBe(false);
    expect(blobs.deleted).toEqual([]);
    unpinA();
    unpinA(); // releasing twice counts once
    await tick();
    expect(blobs.deleted).toEqual([]);
    unpinB();
    await tick();
    expect(blobs.deleted).toEqual([d(1)]);
  });

  it('a blob re-added while its deletion waited for a reader is kept', async () => {
    const { index, blobs } = makeIndex(100);
    index.add('blob', d(1), 60);
    const unpin = index.pin('blob', d(1));
    index.add('blob', d(2), 60);
    index.add('blob', d(1), 30);
    unpin();
    await tick();
    expect(index.has('blob', d(1))).toBe(true);
    expect(blobs.deleted).not.toContain(d(1));
  });

  it('a blob larger than the whole cap is not kept (deleted once nobody reads it)', async () => {
    const { index, blobs } = makeIndex(100);
    index.add('blob', d(1), 50);
    const unpin = index.pin('blob', d(9));
    index.add('blob', d(9), 500);
    await tick();
    expect(index.has('blob', d(9))).toBe(false);
    expect(index.has('blob', d(1))).toBe(true);
    expect(blobs.deleted).toEqual([]);
    unpin();
    await tick();
    expect(blobs.deleted).toEqual([d(9)]);
  });

  it('load() rebuilds the LRU order from access times across every store, oldest first', async () => {
    const { index, stores } = makeIndex(100);
    expect(await index.load([
      entries([{ kind: 'blob', id: d(1), size: 40, accessedAt: 3000 }, { kind: 'blob', id: d(2), size: 30, accessedAt: 1000 }]),
      entries([{ kind: 'manifest', id: d(3), size: 10, accessedAt: 2000 }]),
    ])).toEqual({ entries: 3, bytes: 80 });
    index.add('blob', d(4), 40);
    await tick();
    // d(2) is the least recently accessed; evicting it (30) is enough.
    expect(stores.blob.deleted).toEqual([d(2)]);
    index.add('blob', d(5), 20);
    await tick();
    expect(stores.manifest.deleted).toEqual([d(3)]);
  });
  it('delete() removes at once, or — while a reader holds a pin — only after the last reader is done', async () => {
    const { index, blobs } = makeIndex(1000);
    index.add('blob', d(1), 10);
    index.add('blob', d(2), 10);
    expect(await index.delete('blob', d(1))).toBe('deleted');
    expect(blobs.deleted).toEqual([d(1)]);
    const unpin = index.pin('blob', d(2));
    expect(await index.delete('blob', d(2))).toBe('deferred');
    expect(index.has('blob', d(2))).toBe(false);
    expect(blobs.deleted).toEqual([d(1)]);
    unpin();
    await tick();
    expect(blobs.deleted).toEqual([d(1), d(2)]);
  });
});

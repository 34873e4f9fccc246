// Access-time LRU over everything in the store (blobs and manifests), bounded by cache.maxSize. Eviction deletes
// the file — but never while a client is reading it: a pinned entry's deletion waits for its last reader.
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { BlobStore } from './blob-store.js';

export interface IndexEvents {
  onEvict?: (digest: string, size: number) => void;
}

export class CacheIndex {
  private readonly lru: LRUCache<string, number>;
  private readonly pins = new Map<string, number>();
  private readonly pendingDelete = new Set<string>();

  constructor(private readonly store: BlobStore, readonly maxSize: number, private readonly log: Logger, private readonly events: IndexEvents = {}) {
    this.lru = new LRUCache<string, number>({
      maxSize,
      sizeCalculation: (size) => Math.max(1, size),
      dispose: (size, digest, reason) => {
        if (reason !== 'evict') return;
        this.events.onEvict?.(digest, size);
        if (this.pins.has(digest)) { this.pendingDelete.add(digest); return; }
        void this.remove(digest);
      },
    });
  }

  /** Rebuilds the index from the store, oldest access first, so the LRU order survives a restart. */
  async load(): Promise<{ entries: number; bytes: number }> {
    const all = [];
    for await (const b of this.store.list()) all.push(b);
    all.sort((a, b) => a.accessedAt - b.accessedAt);
    for (const b of all) this.lru.set(b.digest, b.size);
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }

  has(digest: string): boolean {
    return this.lru.has(digest);
  }

  /** Marks a use (moves it to most-recently-used) and returns its size. */
  use(digest: string): number | undefined {
    const size = this.lru.get(digest);
    if (size !== undefined) void this.store.touch(digest);
    return size;
  }

  add(digest: string, size: number): void {
    this.pendingDelete.delete(digest);
    this.lru.set(digest, size);
    // A single blob larger than the whole cap is served but does not stay.
    if (!this.lru.has(digest)) {
      if (this.pins.has(digest)) this.pendingDelete.add(digest);
      else void this.remove(digest);
    }
  }

  /** Protects a blob from deletion while it is read; call the returned function when done. */
  pin(digest: string): () => void {
    this.pins.set(digest, (this.pins.get(digest) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pins.get(digest) ?? 1) - 1;
      if (n > 0) { this.pins.set(digest, n); return; }
      this.pins.delete(digest);
      if (this.pendingDelete.has(digest) && !this.lru.has(digest)) void this.remove(digest);
    };
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get entries(): number {
    return this.lru.size;
  }

  forget(digest: string): void {
    this.lru.delete(digest);
  }

  private async remove(digest: string): Promise<void> {
    this.pendingDelete.delete(digest);
    try { await this.store.delete(digest); } catch (err) { this.log.warn({ digest, err }, 'could not delete evicted blob'); }
  }
}

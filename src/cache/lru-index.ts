// Access-time LRU over everything the cache holds (blobs, manifests, tag mappings), bounded by cache.maxSize in
// bytes and by cache.maxEntries in count. Eviction deletes from the entry's own store — but never while a client
// is reading it: a pinned entry's deletion waits for its last reader. The stores are the truth; the index is how
// ocimirror remembers their sizes and order, so an entry another process wrote (import) is learnt on first use.
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { AccessTimes } from './access-times.js';

export type EntryKind = 'blob' | 'manifest' | 'tag';

/** What the index needs of each kind's store. */
export interface EntryStore {
  delete(id: string): Promise<void>;
  /** Persists an access at `at` so LRU order survives a restart (may be a no-op); the index throttles the calls. */
  touch(id: string, at: Date): Promise<void>;
}

export interface IndexedEntry {
  kind: EntryKind;
  /** A digest for blobs and manifests; "registry/repo:tag" for tag mappings. */
  id: string;
  size: number;
  /** Last access (ms since epoch) as persisted, for LRU order across restarts. */
  accessedAt: number;
}

export interface IndexEvents {
  onEvict?: (kind: EntryKind, id: string, size: number) => void;
}

export interface IndexLimits { maxSize: number; maxEntries: number }

export interface IndexOptions extends IndexEvents {
  /** The clock access times are written with (tests move it instead of sleeping). */
  now?: () => number;
}

/**
 * What the cache asks of an index, whichever it is: this process's LRU (CacheIndex), or the one the replicas of a
 * cluster share through Redis (ClusterIndex). The server code never knows which it has.
 */
export interface EntryIndex {
  readonly maxSize: number;
  /** Bytes and entries held (for a cluster: in the whole bucket, as last counted). */
  readonly bytes: number;
  readonly entries: number;
  /** Start-up: learns what the stores hold (or, shared, what the others have counted). */
  load(sources: AsyncIterable<IndexedEntry>[]): Promise<{ entries: number; bytes: number }>;
  has(kind: EntryKind, id: string): boolean;
  /** Marks a use and returns the size, or undefined when this index does not know the entry. */
  use(kind: EntryKind, id: string): number | undefined;
  add(kind: EntryKind, id: string, size: number): void;
  /** Protects an entry from deletion while it is read; call the returned function when done. */
  pin(kind: EntryKind, id: string): () => void;
  /** Removes an entry on request (`cache rm`, `cache prune`): at once, or after the reads of it end. */
  delete(kind: EntryKind, id: string): Promise<'deleted' | 'deferred'>;
  /** Drops an entry that is already gone from its store. */
  forget(kind: EntryKind, id: string): void;
  /**
   * Counts a running fill's `size` bytes (its temp file) against maxSize now; the returned function gives the room
   * back. Optional: a shared index counts only what the bucket holds.
   */
  reserve?(id: string, size: number): () => void;
  /** Shutdown: whatever is still pending (access times) is written. */
  close?(): void | Promise<void>;
}
/** Key prefix of the room a running fill holds (its temp file), which no store owns. */
const RESERVED = 'fill ';

/** How an index names an entry in one string (a map key, a Redis member): "<kind> <id>". */
export const entryKey = (kind: EntryKind, id: string): string => `${kind} ${id}`;

/** The kind and id an entryKey names, or undefined for a string that is not one. */
export function splitEntryKey(key: string): [EntryKind, string] | undefined {
  const i = key.indexOf(' ');
  const kind = key.slice(0, i);
  return kind === 'blob' || kind === 'manifest' || kind === 'tag' ? [kind, key.slice(i + 1)] : undefined;
}

export class CacheIndex implements EntryIndex {
  private readonly lru: LRUCache<string, number>;
  private readonly pins = new Map<string, number>();
  private readonly pendingDelete = new Set<string>();
  private readonly warned = new Set<string>();
  private readonly reserved = new Set<string>();
  private readonly access: AccessTimes<EntryKind>;
  readonly maxSize: number;

  constructor(
    private readonly stores: Readonly<Record<EntryKind, EntryStore>>,
    limits: IndexLimits,
    private readonly log: Logger,
    private readonly events: IndexOptions = {},
  ) {
    this.maxSize = limits.maxSize;
    this.access = new AccessTimes(stores, events.now ?? Date.now, (kind, err) => this.warnOnce(`touch ${kind} ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`, err));
    this.lru = new LRUCache<string, number>({
      maxSize: limits.maxSize,
      max: limits.maxEntries,
      sizeCalculation: (size) => Math.max(1, size),
      dispose: (size, key, reason) => {
        if (key.startsWith(RESERVED)) { this.reserved.delete(key); return; }
        if (reason !== 'evict') return;
        const [kind, id] = splitEntryKey(key)!;
        this.access.forget(kind, id);
        this.events.onEvict?.(kind, id, size);
        if (this.pins.has(key)) { this.pendingDelete.add(key); return; }
        void this.remove(key);
      },
    });
  }

  /** Rebuilds the index from the stores, oldest access first, so the LRU order survives a restart. */
  async load(sources: AsyncIterable<IndexedEntry>[]): Promise<{ entries: number; bytes: number }> {
    const all: IndexedEntry[] = [];
    for (const source of sources) for await (const e of source) all.push(e);
    all.sort((a, b) => a.accessedAt - b.accessedAt);
    for (const e of all) this.add(e.kind, e.id, e.size);
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }

  has(kind: EntryKind, id: string): boolean {
    return this.lru.has(entryKey(kind, id));
  }

  /** Marks a use (moves it to most-recently-used) and returns its size. */
  use(kind: EntryKind, id: string): number | undefined {
    const size = this.lru.get(entryKey(kind, id));
    if (size !== undefined) this.access.record(kind, id);
    return size;
  }

  add(kind: EntryKind, id: string, size: number): void {
    const key = entryKey(kind, id);
    this.pendingDelete.delete(key);
    this.lru.set(key, size);
    // A single entry larger than the whole cap is served but does not stay.
    if (!this.lru.has(key)) {
      if (this.pins.has(key)) this.pendingDelete.add(key);
      else void this.remove(key);
    }
  }

  /** Protects an entry from deletion while it is read; call the returned function when done. */
  pin(kind: EntryKind, id: string): () => void {
    const key = entryKey(kind, id);
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pins.get(key) ?? 1) - 1;
      if (n > 0) { this.pins.set(key, n); return; }
      this.pins.delete(key);
      if (this.pendingDelete.has(key) && !this.lru.has(key)) void this.remove(key);
    };
  }

  /**
   * Counts a running fill's `size` bytes (its temp file) against maxSize now, evicting older entries to make room
   * before the bytes arrive; the returned function gives the room back (the fill ended, or became a blob entry).
   */
  reserve(id: string, size: number): () => void {
    const key = `${RESERVED}${id}`;
    this.reserved.add(key);
    this.lru.set(key, size);
    if (!this.lru.has(key)) this.reserved.delete(key);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.lru.delete(key);
    };
  }

  /** Bytes counted against maxSize: entries and the room running fills hold. */
  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get entries(): number {
    return this.lru.size - this.reserved.size;
  }

  /** Removes an entry on request (`cache rm`, `cache prune`): at once, or — while a client reads it — after the last one. */
  async delete(kind: EntryKind, id: string): Promise<'deleted' | 'deferred'> {
    const key = entryKey(kind, id);
    this.lru.delete(key);
    this.access.forget(kind, id);
    if (this.pins.has(key)) { this.pendingDelete.add(key); return 'deferred'; }
    this.pendingDelete.delete(key);
    await this.stores[kind].delete(id);
    return 'deleted';
  }

  /** Drops an entry from the index only (it is already gone from its store). */
  forget(kind: EntryKind, id: string): void {
    this.lru.delete(entryKey(kind, id));
    this.access.forget(kind, id);
  }

  /** Shutdown: access times not yet written are written now, so the LRU order survives the restart. */
  close(): Promise<void> {
    return this.access.close();
  }

  /** A storage problem is logged once per kind of failure, not once per cache hit. */
  private warnOnce(what: string, err: unknown): void {
    if (this.warned.has(what)) return;
    if (this.warned.size < 100) this.warned.add(what);
    this.log.warn({ err }, 'cannot record a cache access time (LRU order after a restart may be off)');
  }

  private async remove(key: string): Promise<void> {
    this.pendingDelete.delete(key);
    const [kind, id] = splitEntryKey(key)!;
    try { await this.stores[kind].delete(id); } catch (err) { this.log.warn({ kind, id, err }, 'could not delete an evicted cache entry'); }
  }
}

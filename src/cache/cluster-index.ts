// The index the replicas of a cluster share: cache.maxSize and cache.maxEntries hold for the bucket as a whole.
// Sizes, access times and pins live in Redis (cluster/ledger.ts); this process keeps only what it has learnt
// (entry → size, so a hit costs no Redis round trip) and its own pins. Access times are written at most once a
// minute per entry per replica. One replica at a time evicts (cluster-evictor.ts). With Redis away every replica
// keeps serving and storing; nothing is evicted until Redis is back, and the ledger is then reconciled.
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Ledger, LedgerTotals } from '../cluster/ledger.js';
import { RedisUnavailableError } from '../cluster/redis-link.js';
import type { ClusterEvictor } from './cluster-evictor.js';
import { entryKey, splitEntryKey, type EntryIndex, type EntryKind, type EntryStore, type IndexedEntry, type IndexEvents, type IndexLimits } from './lru-index.js';

export interface ClusterIndexOptions {
  stores: Readonly<Record<EntryKind, EntryStore>>;
  limits: IndexLimits;
  ledger: Ledger;
  evictor: ClusterEvictor;
  log: Logger;
  events?: IndexEvents;
  now?: () => number;
  /** An entry's access time is written at most this often by one replica. */
  touchEveryMs?: number;
  /** How often the pins are renewed, the totals refreshed and the evictor asked whether it has work. */
  tickMs?: number;
}

export class ClusterIndex implements EntryIndex {
  readonly maxSize: number;
  private readonly known: LRUCache<string, number>;
  private readonly touched = new LRUCache<string, number>({ max: 50_000 });
  private readonly pending = new Set<string>();
  private readonly pins = new Map<string, number>();
  /** Entries to delete (oversized, or removed on request) once their last local reader is done. */
  private readonly deferred = new Set<string>();
  private totals: LedgerTotals = { bytes: 0, entries: 0 };
  /** Entries stored while Redis was away: the ledger misses them until the next reconcile. */
  private unrecorded = { entries: 0, bytes: 0 };
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** Ledger failures already logged (bounded: their messages come from Redis). */
  private readonly ledgerWarned = new LRUCache<string, true>({ max: 100 });

  constructor(private readonly o: ClusterIndexOptions) {
    this.maxSize = o.limits.maxSize;
    this.now = o.now ?? Date.now;
    this.known = new LRUCache({ max: o.limits.maxEntries });
  }

  get bytes(): number {
    return this.totals.bytes;
  }

  get entries(): number {
    return this.totals.entries;
  }

  /** Nothing to read at start-up: the ledger is shared, and an entry is learnt from its store on first use. */
  async load(_sources: AsyncIterable<IndexedEntry>[]): Promise<{ entries: number; bytes: number }> {
    await this.refresh();
    if (await this.o.evictor.reconcileDue().catch(this.ledgerFailed('reconcile check', false))) this.o.evictor.wake();
    this.timer = setInterval(() => void this.tick(), this.o.tickMs ?? 10_000);
    this.timer.unref();
    return { ...this.totals };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  has(kind: EntryKind, id: string): boolean {
    return this.known.has(entryKey(kind, id));
  }

  use(kind: EntryKind, id: string): number | undefined {
    const member = entryKey(kind, id);
    const size = this.known.get(member);
    if (size === undefined) return undefined;
    const now = this.now();
    if (now - (this.touched.get(member) ?? -Infinity) >= (this.o.touchEveryMs ?? 60_000)) {
      this.touched.set(member, now);
      this.pending.add(member);
      // Access times go out in batches, at once only when many are waiting.
      if (this.pending.size >= 100) void this.flushTouches();
    }
    return size;
  }

  add(kind: EntryKind, id: string, size: number): void {
    const member = entryKey(kind, id);
    if (size > this.maxSize) {
      // Served, but it does not stay: it would push out everything else.
      this.known.delete(member);
      if (this.pins.has(member)) this.deferred.add(member);
      else void this.deleteFromStore(member);
      return;
    }
    this.known.set(member, size);
    const now = this.now();
    this.touched.set(member, now);
    this.o.ledger.record(member, size, now).then((totals) => {
      this.totals = totals;
      if (totals.bytes > this.maxSize || totals.entries > this.o.limits.maxEntries) this.o.evictor.wake();
    }, () => {
      this.unrecorded.entries++;
      this.unrecorded.bytes += size;
    });
  }

  pin(kind: EntryKind, id: string): () => void {
    const member = entryKey(kind, id);
    const n = this.pins.get(member) ?? 0;
    this.pins.set(member, n + 1);
    // Sent before the caller opens the entry: the evictor sees the pin before it could delete what is read.
    if (n === 0) this.o.ledger.addPin(member).catch(this.ledgerFailed('pin', undefined));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.pins.get(member) ?? 1) - 1;
      if (left > 0) { this.pins.set(member, left); return; }
      this.pins.delete(member);
      this.o.ledger.removePin(member).catch(this.ledgerFailed('unpin', undefined));
      if (this.deferred.delete(member)) void this.deleteFromStore(member);
    };
  }

  /**
   * On request (the admin socket): deleted now, or after this replica's reads of it; one another replica is reading
   * becomes the least recently used, so the evictor takes it first once its reads are done and the bucket is full.
   */
  async delete(kind: EntryKind, id: string): Promise<'deleted' | 'deferred'> {
    const member = entryKey(kind, id);
    this.known.delete(member);
    if (this.pins.has(member)) { this.deferred.add(member); return 'deferred'; }
    const claimed = await this.o.ledger.claim(member).catch(this.ledgerFailed('claim', 'unknown' as const));
    if (claimed === 'pinned') {
      await this.o.ledger.markOldest(member).catch(this.ledgerFailed('mark oldest', undefined));
      return 'deferred';
    }
    await this.o.stores[kind].delete(id);
    return 'deleted';
  }

  forget(kind: EntryKind, id: string): void {
    const member = entryKey(kind, id);
    this.known.delete(member);
    this.o.ledger.remove(member).catch(this.ledgerFailed('remove', undefined));
  }

  /** The evictor deleted an entry (here or on another replica, learnt through a failed read). */
  evicted(member: string): void {
    this.known.delete(member);
  }

  private async deleteFromStore(member: string): Promise<void> {
    const [kind, id] = splitEntryKey(member)!;
    await this.o.ledger.remove(member).catch(this.ledgerFailed('remove', undefined));
    try { await this.o.stores[kind].delete(id); } catch (err) { this.o.log.warn({ kind, id, err }, 'could not delete a cache entry'); }
  }

  private async tick(): Promise<void> {
    await this.flushTouches();
    // Renewed as a whole: a Redis that restarted empty gets this replica's pins back within one tick.
    await this.o.ledger.setPins([...this.pins.keys()]).catch(this.ledgerFailed('pins', undefined));
    await this.refresh();
    // Also when the counts need rebuilding: a Redis that came back empty counts nothing, so never looks full.
    const over = this.totals.bytes > this.maxSize || this.totals.entries > this.o.limits.maxEntries;
    if (over || (await this.o.evictor.reconcileDue().catch(this.ledgerFailed('reconcile check', false)))) this.o.evictor.wake();
  }

  /**
   * The ledger is bookkeeping: a failed call never fails a request (the next reconcile repairs the counts). Redis
   * being away is logged once by RedisLink; anything else is logged once per operation and kind of error.
   */
  private ledgerFailed<T>(op: string, fallback: T): (err: unknown) => T {
    return (err) => {
      if (!(err instanceof RedisUnavailableError)) {
        const key = `${op} ${(err as Error).name}: ${(err as Error).message}`.slice(0, 200);
        if (!this.ledgerWarned.has(key)) {
          this.ledgerWarned.set(key, true);
          this.o.log.warn({ op, err }, 'the shared cache ledger refused a call; counts are repaired at the next reconcile');
        }
      }
      return fallback;
    };
  }

  private async flushTouches(): Promise<void> {
    const members = [...this.pending];
    this.pending.clear();
    await this.o.ledger.touch(members, this.now()).catch(this.ledgerFailed('touch', undefined));
  }

  private async refresh(): Promise<void> {
    try {
      this.totals = await this.o.ledger.totals();
    } catch (err) {
      this.ledgerFailed('totals', undefined)(err);
      return;
    }
    if (this.unrecorded.entries > 0) {
      this.o.log.info({ ...this.unrecorded }, 'entries stored while Redis was away are counted at the next reconcile');
      this.unrecorded = { entries: 0, bytes: 0 };
      // Forces the next evictor to list the stores before it trusts the totals.
      await this.o.ledger.setReconciledAt(undefined).catch(this.ledgerFailed('reconcile mark', undefined));
    }
  }
}

/** A replica's name for its pins: unique per process, so a restarted replica never inherits a dead one's pins. */
export function replicaName(): string {
  return randomBytes(8).toString('hex');
}

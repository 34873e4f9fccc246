// One evictor at a time for the whole bucket: whichever replica holds the 'evictor' lease deletes the least
// recently used entries until the ledger's totals are under cache.maxSize and cache.maxEntries again, skipping
// any entry a replica is reading (the ledger's claim checks every live pin set). Before it trusts the totals it
// reconciles them with a listing of the stores when nobody has yet (a Redis that restarted empty, entries stored
// while Redis was away), and then at most once per reconcileEveryMs.
import type { Logger } from 'pino';
import type { Leases } from '../cluster/lease.js';
import type { Ledger } from '../cluster/ledger.js';
import { RedisUnavailableError } from '../cluster/redis-link.js';
import { entryKey, splitEntryKey, type EntryKind, type EntryStore, type IndexedEntry, type IndexEvents, type IndexLimits } from './lru-index.js';

export interface ClusterEvictorOptions {
  ledger: Ledger;
  leases: Leases;
  stores: Readonly<Record<EntryKind, EntryStore>>;
  /** Fresh listings of every store (for reconciling). */
  sources: () => AsyncIterable<IndexedEntry>[];
  limits: IndexLimits;
  log: Logger;
  events?: IndexEvents;
  /** Told about each entry this replica evicted. */
  onEvicted?: (member: string) => void;
  now?: () => number;
  reconcileEveryMs?: number;
  leaseTtlMs?: number;
}

const BATCH = 100;

export class ClusterEvictor {
  private running: Promise<void> | undefined;
  private again = false;
  /** Entries this replica evicted, bytes freed, passes run (tests and logs). */
  readonly stats = { evicted: 0, bytes: 0, passes: 0, reconciles: 0 };

  constructor(private readonly o: ClusterEvictorOptions) {}

  /** Runs a pass soon (or one more after the current one); never waits and never throws. */
  wake(): void {
    if (this.running) { this.again = true; return; }
    this.running = this.pass().catch((err: Error) => {
      if (!(err instanceof RedisUnavailableError)) this.o.log.warn({ err }, 'eviction pass failed');
    }).finally(() => {
      this.running = undefined;
      if (this.again) { this.again = false; this.wake(); }
    });
  }

  /** Resolves when no pass is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async pass(): Promise<void> {
    const got = await this.o.leases.acquire('evictor', this.o.leaseTtlMs ?? 30_000);
    // Another replica is evicting: its pass sees our additions in the same totals.
    if (!got.acquired) return;
    const lease = got.lease.keepAlive();
    try {
      this.stats.passes++;
      await this.reconcileIfDue();
      await this.evict(() => lease.held);
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  private over(t: { bytes: number; entries: number }): boolean {
    return t.bytes > this.o.limits.maxSize || t.entries > this.o.limits.maxEntries;
  }

  private async evict(held: () => boolean): Promise<void> {
    let totals = await this.o.ledger.totals();
    const skipped = new Set<string>();
    while (this.over(totals) && held()) {
      const candidates = (await this.o.ledger.oldest(BATCH + skipped.size)).filter((m) => !skipped.has(m));
      if (candidates.length === 0) break;
      for (const member of candidates) {
        if (!this.over(totals) || !held()) break;
        const claimed = await this.o.ledger.claim(member);
        if (claimed === 'pinned') { skipped.add(member); continue; }
        if (claimed === 'unknown') continue;
        totals = { bytes: totals.bytes - claimed, entries: totals.entries - 1 };
        await this.remove(member, claimed);
      }
      totals = await this.o.ledger.totals();
      // Every candidate left is being read: the cap is exceeded until those reads end.
      if (candidates.every((m) => skipped.has(m))) break;
    }
    if (this.over(totals)) this.o.log.info({ ...totals, maxSize: this.o.limits.maxSize, beingRead: skipped.size }, 'cache over its limits until entries being read are released');
  }

  private async remove(member: string, size: number): Promise<void> {
    const entry = splitEntryKey(member);
    if (!entry) return;
    const [kind, id] = entry;
    try {
      await this.o.stores[kind].delete(id);
    } catch (err) {
      this.o.log.warn({ kind, id, err }, 'could not delete an evicted cache entry; the next reconcile counts it again');
      return;
    }
    this.stats.evicted++;
    this.stats.bytes += size;
    this.o.events?.onEvict?.(kind, id, size);
    this.o.onEvicted?.(member);
  }

  /** True when nobody has reconciled the ledger with the stores (Redis came back empty) or not for a while. */
  async reconcileDue(): Promise<boolean> {
    const last = await this.o.ledger.reconciledAt();
    return last === undefined || (this.o.now ?? Date.now)() - last >= (this.o.reconcileEveryMs ?? 3_600_000);
  }

  private async reconcileIfDue(): Promise<void> {
    if (await this.reconcileDue()) await this.reconcile((this.o.now ?? Date.now)());
  }

  /** Counts what the stores hold and nobody counted, and forgets what the ledger counts but the stores lost. */
  async reconcile(now: number): Promise<{ adopted: number; dropped: number }> {
    const before = await this.o.ledger.members();
    const seen = new Set<string>();
    let adopted = 0;
    for (const source of this.o.sources()) {
      for await (const e of source) {
        const member = entryKey(e.kind, e.id);
        seen.add(member);
        if (!before.has(member) && (await this.o.ledger.adopt(member, e.size, e.accessedAt))) adopted++;
      }
    }
    let dropped = 0;
    for (const member of before) {
      if (!seen.has(member) && (await this.o.ledger.remove(member)) !== undefined) dropped++;
    }
    await this.o.ledger.setReconciledAt(now);
    this.stats.reconciles++;
    this.o.log.info({ adopted, dropped, listed: seen.size }, 'reconciled the shared cache ledger with the stores');
    return { adopted, dropped };
  }
}

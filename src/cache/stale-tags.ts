// The tag answers that upstream did not give: the last known mapping served stale (within the policy's window,
// with `Warning: 110` and its age), and "this tag does not exist" remembered for negativeTtl. Both bounded in
// memory; the clock is the cache's (tests move it).
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { EffectivePolicy } from '../config/policies.js';
import type { CacheStats, StaleReason } from './stats.js';
import type { TagMapping } from './tag-store.js';

const WHY: Record<StaleReason, string> = {
  error: 'every upstream endpoint failed',
  notfound: 'upstream no longer has this tag',
  ratelimit: 'upstream rate limit reached or nearly used up',
};

export class StaleTags {
  /** Tags whose stale answer was already logged (once per outage, not per request). */
  private readonly warned = new LRUCache<string, true>({ max: 10_000 });
  /** Tag id → when upstream said not-found, kept while negativeTtl runs. */
  private readonly notFound = new LRUCache<string, number>({ max: 10_000 });

  constructor(private readonly d: { stats: CacheStats; log: Logger; now: () => number }) {}

  /** When upstream last said the tag does not exist, if that is still within negativeTtl. */
  knownMissing(id: string, policy: EffectivePolicy): number | undefined {
    const at = this.notFound.get(id);
    if (at === undefined) return undefined;
    if (this.d.now() - at < policy.negativeTtlMs) return at;
    this.notFound.delete(id);
    return undefined;
  }

  rememberMissing(id: string, policy: EffectivePolicy): void {
    if (policy.negativeTtlMs > 0) this.notFound.set(id, this.d.now());
  }

  /** Upstream answered for the tag again: the next outage is logged anew. */
  confirmed(id: string): void {
    this.warned.delete(id);
    this.notFound.delete(id);
  }

  /**
   * May `last` be served instead of what upstream said? Staleness counts from the end of its freshness (tagTtl):
   * staleIfError bounds failures (5xx, 429, transport), staleIfNotFound (0 = never) a 404. Neither bounds an
   * imported mapping (what the operator put there). A rate-limit hold is not asked here: its window bounds it.
   */
  allows(last: TagMapping, failure: 'error' | 'notfound', policy: EffectivePolicy): boolean {
    if (last.imported) return true;
    const window = failure === 'notfound' ? policy.staleIfNotFoundMs : policy.staleIfErrorMs;
    const staleFor = this.d.now() - (last.checkedAt + policy.tagTtlMs);
    return window > 0 && staleFor <= window;
  }

  /** Counts, logs (once per tag) and labels a stale answer: `Warning: 110` with the reason and the mapping's age. */
  warning(id: string, last: TagMapping, reason: StaleReason, context: Record<string, unknown>): string {
    this.d.stats.staleServed[reason]++;
    const age = Math.max(0, Math.round((this.d.now() - last.checkedAt) / 1000));
    if (reason !== 'ratelimit' && !this.warned.has(id)) {
      this.warned.set(id, true);
      this.d.log.warn({ ...context, digest: last.digest, ageSeconds: age, reason },
        reason === 'error' ? 'every upstream failed; serving the last known manifest for this tag' : 'upstream says this tag is gone; serving the last known manifest within staleIfNotFound');
    }
    return `110 ocimirror "Response is Stale: ${WHY[reason]}; age ${age}s"`;
  }
}

// Cross-replica single-flight: the first replica to miss a digest takes the lease "fill:<digest>" in Redis and
// runs the fill; a replica that misses it while the lease is held streams it from the owner (its advertiseUrl)
// instead of from upstream. The owner renews the lease while the fill runs and releases it once the blob is in
// the bucket (or the fill failed for good); an owner that dies stops renewing, so the lease expires and the next
// miss anywhere takes over. With Redis away every replica fills on its own (its local single-flight still holds).
import type { Logger } from 'pino';
import type { Leases } from '../cluster/lease.js';
import type { PeerAnswer, PeerClient } from '../cluster/peer-client.js';
import { RedisUnavailableError } from '../cluster/redis-link.js';

export type FillClaim =
  /** This replica fills; `release` gives the lease back (call it once, when the fill ended). */
  | { kind: 'own'; release: () => void }
  /** Another replica fills: follow it. */
  | { kind: 'follow'; owner: string; ttlMs: number }
  /** Redis holds a lease in this replica's name that it does not know of (an old one, or a SET that landed late). */
  | { kind: 'self' };

export interface SharedFillsOptions {
  leases: Leases;
  peers: PeerClient;
  /** This replica's advertiseUrl, as the lease names its owner. */
  self: string;
  log: Logger;
  leaseTtlMs?: number;
}

export const FILL_LEASE_TTL_MS = 15_000;

export class SharedFills {
  readonly leaseTtlMs: number;
  /** Leases taken, follows started (tests, the closing note's traffic count). */
  readonly stats = { owned: 0, followed: 0, solo: 0 };

  constructor(private readonly o: SharedFillsOptions) {
    this.leaseTtlMs = o.leaseTtlMs ?? FILL_LEASE_TTL_MS;
  }

  async claim(digest: string): Promise<FillClaim> {
    let got;
    try {
      got = await this.o.leases.acquire(`fill:${digest}`, this.leaseTtlMs);
    } catch (err) {
      // The link logs an outage once; any other refusal (out of memory, a script error) is logged here. A miss is
      // never failed for want of coordination: it is filled here.
      if (!(err instanceof RedisUnavailableError)) this.o.log.warn({ digest, err: (err as Error).message }, 'Redis refused the fill lease; fetching on this replica alone');
      this.stats.solo++;
      return { kind: 'own', release: () => undefined };
    }
    if (!got.acquired) {
      if (got.holder.owner === this.o.self) return { kind: 'self' };
      return { kind: 'follow', owner: got.holder.owner, ttlMs: got.holder.ttlMs };
    }
    this.stats.owned++;
    const lease = got.lease.keepAlive();
    lease.once('lost', (reason: string) => this.o.log.warn({ digest, reason }, 'lost the fill lease; the fill carries on, another replica may fetch the blob too'));
    let released = false;
    return {
      kind: 'own',
      release: () => {
        if (released) return;
        released = true;
        lease.release().catch(() => undefined);
      },
    };
  }

  /** The owner's running fill of `digest` (the client's Range forwarded), or why there is none to follow. */
  follow(owner: string, digest: string, range: string | undefined, signal?: AbortSignal): Promise<PeerAnswer> {
    this.stats.followed++;
    return this.o.peers.fill(owner, digest, range, signal);
  }
}

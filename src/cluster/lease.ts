// Leases in Redis: "who owns the fill of digest X", "who is the evictor". A lease is a key set with NX and an
// expiry, whose value names the owner (its advertiseUrl, so others know where to stream from) and a random token.
// Renewal and release compare the whole value in one Lua call, so an owner whose lease expired and was taken by
// another can neither extend nor delete the new owner's. Each call is one round trip.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Redis, Result } from 'ioredis';
import type { RedisLink } from './redis-link.js';

// SET NX PX, or report who holds it and for how much longer, atomically.
const ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, ARGV[1], tonumber(ARGV[2])} end
return {0, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    ocimirrorLeaseAcquire(key: string, value: string, ttlMs: number): Result<[0 | 1, string, number], Context>;
    ocimirrorLeaseRenew(key: string, value: string, ttlMs: number): Result<number, Context>;
    ocimirrorLeaseRelease(key: string, value: string): Result<number, Context>;
  }
}

/** Clients the scripts are defined on (ioredis sends EVALSHA, and the script itself once after a NOSCRIPT). */
const scripted = new WeakSet<Redis>();

/** Lease names are ours (digests, "evictor"), never a client's text; still, nothing odd becomes a key. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$/;

export interface LeaseHolder {
  /** The holder's advertiseUrl. */
  owner: string;
  /** How much longer the lease lasts unless renewed. */
  ttlMs: number;
}

export type Acquired = { acquired: true; lease: Lease } | { acquired: false; holder: LeaseHolder };

export interface LeasesOptions {
  /** This replica's advertiseUrl: what other replicas read as the owner. */
  owner: string;
  /** Prefix of every key (several deployments may share one Redis). */
  keyPrefix?: string;
  /** Monotonic clock for local deadlines. */
  now?: () => number;
}

export class Leases {
  private readonly keyPrefix: string;
  readonly now: () => number;

  constructor(private readonly link: RedisLink, private readonly opts: LeasesOptions) {
    this.keyPrefix = opts.keyPrefix ?? 'ocimirror:';
    this.now = opts.now ?? (() => performance.now());
    const client = link.client;
    if (!scripted.has(client)) {
      scripted.add(client);
      client.defineCommand('ocimirrorLeaseAcquire', { numberOfKeys: 1, lua: ACQUIRE });
      client.defineCommand('ocimirrorLeaseRenew', { numberOfKeys: 1, lua: RENEW });
      client.defineCommand('ocimirrorLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
    }
  }

  key(name: string): string {
    if (!NAME.test(name)) throw new Error(`invalid lease name ${JSON.stringify(name)}`);
    return `${this.keyPrefix}lease:${name}`;
  }

  /** Takes the lease if it is free; otherwise says who holds it. RedisUnavailableError when Redis cannot answer. */
  async acquire(name: string, ttlMs: number): Promise<Acquired> {
    const key = this.key(name);
    const value = JSON.stringify({ owner: this.opts.owner, token: randomBytes(12).toString('hex') });
    const started = this.now();
    const [ok, current, ttl] = await this.link.run((c) => c.ocimirrorLeaseAcquire(key, value, ttlMs));
    if (ok === 1) return { acquired: true, lease: new Lease(this.link, this, name, key, value, ttlMs, started + ttlMs) };
    return { acquired: false, holder: { owner: ownerOf(current), ttlMs: Math.max(0, ttl) } };
  }

  /** Who holds the lease now, if anyone. */
  async holder(name: string): Promise<LeaseHolder | undefined> {
    const key = this.key(name);
    const [value, ttl] = await this.link.run(async (c: Redis) => Promise.all([c.get(key), c.pttl(key)]));
    return value === null ? undefined : { owner: ownerOf(value), ttlMs: Math.max(0, ttl) };
  }
}

function ownerOf(value: string): string {
  try {
    const owner = (JSON.parse(value) as { owner?: unknown }).owner;
    return typeof owner === 'string' ? owner : '';
  } catch {
    return '';
  }
}

/**
 * A held lease. `held` is this process's own view: true until the local deadline (start of the last successful
 * acquire/renew request + ttl) passes or a renewal finds the lease gone. 'lost' is emitted once, with a reason.
 */
export class Lease extends EventEmitter {
  readonly owner: string;
  private lostReason: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Successful renewals so far. */
  renewals = 0;

  constructor(
    private readonly link: RedisLink, private readonly leases: Leases, readonly name: string, private readonly key: string,
    private readonly value: string, readonly ttlMs: number, private deadline: number,
  ) {
    super();
    this.owner = ownerOf(value);
  }

  get held(): boolean {
    return this.lostReason === undefined && this.leases.now() < this.deadline;
  }

  /** Extends the lease by ttlMs from now. False when it was lost (expired and maybe taken); throws when Redis is away. */
  async renew(): Promise<boolean> {
    if (this.lostReason !== undefined) return false;
    const started = this.leases.now();
    const ok = await this.link.run((c) => c.ocimirrorLeaseRenew(this.key, this.value, this.ttlMs));
    if (ok === 1) {
      this.deadline = started + this.ttlMs;
      this.renewals++;
      return true;
    }
    this.markLost('the lease expired and is no longer ours');
    return false;
  }

  /** Renews every intervalMs (default a third of the ttl) until released or lost. */
  keepAlive(intervalMs = Math.max(1, Math.floor(this.ttlMs / 3))): this {
    if (this.timer || this.lostReason !== undefined) return this;
    this.timer = setInterval(() => {
      this.renew().catch((err: Error) => {
        if (this.leases.now() >= this.deadline) this.markLost(`could not renew before the lease ran out: ${err.message}`);
      });
    }, intervalMs);
    this.timer.unref();
    return this;
  }

  /** Gives the lease up if it is still ours. True when it was deleted by this call. */
  async release(): Promise<boolean> {
    this.stop();
    const wasOurs = this.lostReason === undefined;
    this.lostReason ??= 'released';
    if (!wasOurs) return false;
    return (await this.link.run((c) => c.ocimirrorLeaseRelease(this.key, this.value))) === 1;
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private markLost(reason: string): void {
    if (this.lostReason !== undefined) return;
    this.lostReason = reason;
    this.stop();
    this.emit('lost', reason);
  }
}

// The replicas' shared bookkeeping of what the bucket holds, in Redis: each entry's size (a hash, with a running
// total beside it), its last access (a sorted set, oldest first) and which entries are being read right now (one
// set per replica, kept alive while the replica lives). Members are opaque strings ("blob sha256:…"); what they
// name is the cache's business. Every change of size and total is one Lua call, so the total never drifts from
// the hash by a race between replicas.
import type { Redis, Result } from 'ioredis';
import type { RedisLink } from './redis-link.js';

// KEYS: sizes atime total. ARGV: member size now. Replaces the size, moves the total by the difference.
const RECORD = `local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local total = redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]) - old)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {total, redis.call('HLEN', KEYS[1])}`;
// KEYS: sizes atime total. ARGV: member size accessedAt. Adds an entry only if it is not counted yet (reconcile).
const ADOPT = `if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('INCRBY', KEYS[3], ARGV[2])
  redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
  return 1
end
return 0`;
// KEYS: sizes atime total. ARGV: member. Forgets an entry; returns the size it had, or -1 if it was not counted.
const REMOVE = `redis.call('ZREM', KEYS[2], ARGV[1])
local size = redis.call('HGET', KEYS[1], ARGV[1])
if not size then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DECRBY', KEYS[3], size)
return tonumber(size)`;
// KEYS: sizes atime total pinsets. ARGV: member. Like REMOVE, unless a live replica's pin set holds the member (-2).
const CLAIM = `for _, set in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if redis.call('EXISTS', set) == 0 then redis.call('SREM', KEYS[4], set)
  elseif redis.call('SISMEMBER', set, ARGV[1]) == 1 then return -2 end
end
${REMOVE}`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    ocimirrorLedgerRecord(sizes: string, atime: string, total: string, member: string, size: number, now: number): Result<[number, number], Context>;
    ocimirrorLedgerAdopt(sizes: string, atime: string, total: string, member: string, size: number, at: number): Result<number, Context>;
    ocimirrorLedgerRemove(sizes: string, atime: string, total: string, member: string): Result<number, Context>;
    ocimirrorLedgerClaim(sizes: string, atime: string, total: string, pinsets: string, member: string): Result<number, Context>;
  }
}

const scripted = new WeakSet<Redis>();

export interface LedgerTotals { bytes: number; entries: number }

export interface LedgerOptions {
  /** Prefix of every key: one per bucket and prefix, so deployments can share a Redis. */
  keyPrefix: string;
  /** This replica's name for its pin set (unique per process). */
  replica: string;
  /** A replica's pins vanish this long after it stopped renewing them (it died). */
  pinTtlMs: number;
}

export class Ledger {
  private readonly k: { sizes: string; atime: string; total: string; pinsets: string; pins: string; reconciled: string };

  constructor(private readonly link: RedisLink, readonly opts: LedgerOptions) {
    const p = opts.keyPrefix;
    this.k = {
      sizes: `${p}sizes`, atime: `${p}atime`, total: `${p}total`, pinsets: `${p}pinsets`, pins: `${p}pins:${opts.replica}`, reconciled: `${p}reconciled`,
    };
    const client = link.client;
    if (!scripted.has(client)) {
      scripted.add(client);
      client.defineCommand('ocimirrorLedgerRecord', { numberOfKeys: 3, lua: RECORD });
      client.defineCommand('ocimirrorLedgerAdopt', { numberOfKeys: 3, lua: ADOPT });
      client.defineCommand('ocimirrorLedgerRemove', { numberOfKeys: 3, lua: REMOVE });
      client.defineCommand('ocimirrorLedgerClaim', { numberOfKeys: 4, lua: CLAIM });
    }
  }

  /** Counts an entry at this size (replacing what it was counted at) and marks it used now. */
  async record(member: string, size: number, now: number): Promise<LedgerTotals> {
    const { sizes, atime, total } = this.k;
    const [bytes, entries] = await this.link.run((c) => c.ocimirrorLedgerRecord(sizes, atime, total, member, size, now));
    return { bytes, entries };
  }

  /** Counts an entry found in the store that nobody counted; true when it was new to the ledger. */
  async adopt(member: string, size: number, accessedAt: number): Promise<boolean> {
    const { sizes, atime, total } = this.k;
    return (await this.link.run((c) => c.ocimirrorLedgerAdopt(sizes, atime, total, member, size, accessedAt))) === 1;
  }

  /** Moves entries' access times forward; entries the ledger no longer counts stay forgotten. */
  async touch(members: readonly string[], now: number): Promise<void> {
    if (members.length === 0) return;
    await this.link.run((c) => c.zadd(this.k.atime, 'XX', 'GT', ...members.flatMap((m) => [String(now), m])));
  }

  /** Makes an entry the least recently used: the next eviction takes it first. */
  async markOldest(member: string): Promise<void> {
    await this.link.run((c) => c.zadd(this.k.atime, 'XX', '0', member));
  }

  /** Forgets an entry (gone from the store); its size, or undefined when it was not counted. */
  async remove(member: string): Promise<number | undefined> {
    const { sizes, atime, total } = this.k;
    const size = await this.link.run((c) => c.ocimirrorLedgerRemove(sizes, atime, total, member));
    return size < 0 ? undefined : size;
  }

  /**
   * For the evictor: forgets the entry unless some replica is reading it. Returns its size ('pinned' when it is
   * being read, 'unknown' when nobody counts it). The caller then deletes it from the store.
   */
  async claim(member: string): Promise<number | 'pinned' | 'unknown'> {
    const { sizes, atime, total, pinsets } = this.k;
    const size = await this.link.run((c) => c.ocimirrorLedgerClaim(sizes, atime, total, pinsets, member));
    return size === -2 ? 'pinned' : size === -1 ? 'unknown' : size;
  }

  /** The least recently used entries, oldest first. */
  async oldest(count: number): Promise<string[]> {
    return this.link.run((c) => c.zrange(this.k.atime, '0', String(count - 1)));
  }

  async totals(): Promise<LedgerTotals> {
    const [bytes, entries] = await this.link.run(async (c) => Promise.all([c.get(this.k.total), c.hlen(this.k.sizes)]));
    return { bytes: Number(bytes ?? 0), entries };
  }

  /** Every counted member (for reconciling with a listing of the stores). */
  async members(): Promise<Set<string>> {
    const all = new Set<string>();
    await this.link.run(async (c) => {
      let cursor = '0';
      do {
        const [next, flat] = await c.hscan(this.k.sizes, cursor, 'COUNT', 1000);
        for (let i = 0; i < flat.length; i += 2) all.add(flat[i]!);
        cursor = next;
      } while (cursor !== '0');
    });
    return all;
  }

  /** Replaces this replica's pin set with `members` and keeps it alive for pinTtlMs (empty: removes it). */
  async setPins(members: readonly string[]): Promise<void> {
    const { pins, pinsets } = this.k;
    await this.link.run(async (c) => {
      const m = c.multi().del(pins);
      if (members.length > 0) m.sadd(pins, ...members).pexpire(pins, this.opts.pinTtlMs).sadd(pinsets, pins);
      await m.exec();
    });
  }

  async addPin(member: string): Promise<void> {
    const { pins, pinsets } = this.k;
    await this.link.run(async (c) => { await c.multi().sadd(pins, member).pexpire(pins, this.opts.pinTtlMs).sadd(pinsets, pins).exec(); });
  }

  async removePin(member: string): Promise<void> {
    await this.link.run((c) => c.srem(this.k.pins, member));
  }

  /** When the stores were last reconciled with the ledger (ms since epoch), or undefined: never, or Redis lost it. */
  async reconciledAt(): Promise<number | undefined> {
    const v = await this.link.run((c) => c.get(this.k.reconciled));
    return v === null ? undefined : Number(v);
  }

  async setReconciledAt(at: number | undefined): Promise<void> {
    await this.link.run(async (c) => { await (at === undefined ? c.del(this.k.reconciled) : c.set(this.k.reconciled, String(at))); });
  }
}

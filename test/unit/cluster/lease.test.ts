// Leases against a real redis-server: one winner that names its owner, expiry when the owner stops renewing,
// renewal keeping it, and an owner whose lease expired and was taken over can neither renew nor delete it.
import { once } from 'node:events';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Leases, type Acquired, type Lease } from '../../../src/cluster/lease.js';
import { RedisLink } from '../../../src/cluster/redis-link.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';

let redis: RedisServer;
const links: RedisLink[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});
afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
});

/** A replica's view: its own connection and its own advertiseUrl. */
async function replica(owner: string, keyPrefix: string): Promise<{ leases: Leases; link: RedisLink }> {
  const link = new RedisLink({ url: redis.url, log: pino({ level: 'silent' }) });
  links.push(link);
  await link.whenUp(5000);
  return { leases: new Leases(link, { owner, keyPrefix }), link };
}

let n = 0;
const freshPrefix = () => `test-${process.pid}-${n++}:`;

function leaseOf(a: Acquired): Lease {
  if (!a.acquired) throw new Error(`expected to acquire, but ${a.holder.owner} holds it`);
  return a.lease;
}


describe('Leases on redis-server', () => {
  it('one replica wins; the others learn who holds it (its advertiseUrl) and for how long', async () => {
    const prefix = freshPrefix();
    const a = await replica('http://10.0.0.1:5000', prefix);
    const b = await replica('http://10.0.0.2:5000', prefix);
    const results = await Promise.all([a.leases.acquire('fill:sha256:abc', 30_000), b.leases.acquire('fill:sha256:abc', 30_000)]);
    const winners = results.filter((r) => r.acquired);
    expect(winners).toHaveLength(1);
    const loser = results.find((r) => !r.acquired) as Extract<Acquired, { acquired: false }>;
    const winner = leaseOf(winners[0]!);
    expect(loser.holder.owner).toBe(winner.owner);
    expect(loser.holder.ttlMs).toBeGreaterThan(0);
    expect(loser.holder.ttlMs).toBeLessThanOrEqual(30_000);
    expect(await a.leases.holder('fill:sha256:abc')).toMatchObject({ owner: winner.owner });
    expect(await a.leases.holder('fill:sha256:other')).toBeUndefined();
    // Other names are independent.
    expect((await b.leases.acquire('evictor', 30_000)).acquired).toBe(true);
  });

  it('expires when the owner stops renewing: another replica takes over', async () => {
    const prefix = freshPrefix();
    const a = await replica('http://a:5000', prefix);
    const b = await replica('http://b:5000', prefix);
    leaseOf(await a.leases.acquire('fill:x', 300));
    const taken = await eventually(async () => {
      const r = await b.leases.acquire('fill:x', 30_000);
      return r.acquired ? r.lease : undefined;
    });
    expect(await a.leases.holder('fill:x')).toMatchObject({ owner: 'http://b:5000' });
    expect(taken.held).toBe(true);
  });

  it('renew() extends the expiry from now', async () => {
    const prefix = freshPrefix();
    const a = await replica('http://a:5000', prefix);
    const lease = leaseOf(await a.leases.acquire('fill:r', 10_000));
    // Wait until Redis shows time has passed, then renew: the remaining time is back near the full ttl.
    await eventually(async () => ((await a.leases.holder('fill:r'))!.ttlMs < 9_500 ? true : undefined));
    expect(await lease.renew()).toBe(true);
    expect((await a.leases.holder('fill:r'))!.ttlMs).toBeGreaterThan(9_500);
    expect(lease.renewals).toBe(1);
  });

  it('keepAlive() holds the lease well past its ttl', async () => {
    const prefix = freshPrefix();
    const a = await replica('http://a:5000', prefix);
    const b = await replica('http://b:5000', prefix);
    const lease = leaseOf(await a.leases.acquire('evictor', 400)).keepAlive(50);
    const lost: string[] = [];
    lease.on('lost', (why: string) => lost.push(why));
    // Five ttls' worth of renewals (counted, not slept): the lease never lapsed for b to take.
    await eventually(async () => (lease.renewals >= 40 ? true : undefined));
    const r = await b.leases.acquire('evictor', 400);
    expect(r).toMatchObject({ acquired: false, holder: { owner: 'http://a:5000' } });
    expect(lost).toEqual([]);
    expect(lease.held).toBe(true);
    expect(await lease.release()).toBe(true);
    expect((await b.leases.acquire('evictor', 400)).acquired).toBe(true);
  });

  it('an owner whose lease expired and was taken over can neither renew nor release it', async () => {
    const prefix = freshPrefix();
    const a = await replica('http://a:5000', prefix);
    const b = await replica('http://b:5000', prefix);
    const old = leaseOf(await a.leases.acquire('fill:y', 200));
    const lost = once(old, 'lost');
    await eventually(async () => ((await b.leases.acquire('fill:y', 30_000)).acquired ? true : undefined));
    expect(await old.renew()).toBe(false);
    expect(await lost).toEqual(['the lease expired and is no longer ours']);
    expect(await old.release()).toBe(false);
    expect(await a.leases.holder('fill:y')).toMatchObject({ owner: 'http://b:5000' });
    // A renewing owner notices by itself: its next renewal finds the lease gone.
    const stale = leaseOf(await a.leases.acquire('fill:z', 200));
    const staleLost = once(stale, 'lost');
    await eventually(async () => ((await b.leases.acquire('fill:z', 30_000)).acquired ? true : undefined));
    stale.keepAlive(20);
    expect(await staleLost).toEqual(['the lease expired and is no longer ours']);
    expect(stale.held).toBe(false);
    expect(await a.leases.holder('fill:z')).toMatchObject({ owner: 'http://b:5000' });
  });

  it('refuses lease names that could address other keys', async () => {
    const a = await replica('http://a:5000', freshPrefix());
    for (const bad of ['', '*', 'a b', 'x\n', '../y', 'a'.repeat(201)]) {
      await expect(a.leases.acquire(bad, 1000), JSON.stringify(bad)).rejects.toThrow(/invalid lease name/);
    }
  });
});

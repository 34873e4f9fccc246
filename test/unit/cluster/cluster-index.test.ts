// The shared index of a cluster against a real redis-server, replicas as separate ClusterIndex instances over the
// same (in-memory) stores: one total for all of them, least recently used first no matter which replica used it,
// an entry a replica is reading is skipped until the read ends, the ledger is reconciled with the stores after a
// Redis that lost its data, and with Redis away nothing is evicted and nothing fails.
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterEvictor } from '../../../src/cache/cluster-evictor.js';
import { ClusterIndex } from '../../../src/cache/cluster-index.js';
import type { EntryKind, EntryStore, IndexedEntry } from '../../../src/cache/lru-index.js';
import { Leases } from '../../../src/cluster/lease.js';
import { Ledger } from '../../../src/cluster/ledger.js';
import { RedisLink } from '../../../src/cluster/redis-link.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';

let redis: RedisServer;
const links: RedisLink[] = [];
const indexes: ClusterIndex[] = [];
const log = pino({ level: 'silent' });

beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => { await redis?.close(); });
afterEach(async () => {
  for (const i of indexes.splice(0)) i.close();
  await Promise.all(links.splice(0).map((l) => l.close()));
});

/** One bucket: what each kind's store holds, and what was deleted from it. */
function memoryStores() {
  const held = new Map<string, IndexedEntry>();
  const deleted: string[] = [];
  const store = (kind: EntryKind): EntryStore => ({
    delete: async (id) => { if (held.delete(`${kind} ${id}`)) deleted.push(`${kind} ${id}`); },
    touch: async () => undefined,
  });
  const stores = { blob: store('blob'), manifest: store('manifest'), tag: store('tag') };
  async function* listing(): AsyncIterable<IndexedEntry> { yield* [...held.values()]; }
  return { held, deleted, stores, put: (kind: EntryKind, id: string, size: number) => held.set(`${kind} ${id}`, { kind, id, size, accessedAt: 1 }), listing };
}

let n = 0;
async function cluster(limits: { maxSize: number; maxEntries: number }) {
  const keyPrefix = `t${process.pid}-${n++}:`;
  const bucket = memoryStores();
  let clock = 1_000_000;
  async function replica(name: string) {
    const link = new RedisLink({ url: redis.url, log, commandTimeoutMs: 500 });
    links.push(link);
    await link.whenUp(5000);
    const leases = new Leases(link, { owner: `http://${name}`, keyPrefix });
    const ledger = new Ledger(link, { keyPrefix, replica: name, pinTtlMs: 30_000 });
    let index: ClusterIndex | undefined;
    const evictor = new ClusterEvictor({
      ledger, leases, stores: bucket.stores, sources: () => [bucket.listing()], limits, log, onEvicted: (m) => index?.evicted(m),
    });
    index = new ClusterIndex({ stores: bucket.stores, limits, ledger, evictor, log, now: () => clock, touchEveryMs: 0, tickMs: 3_600_000 });
    indexes.push(index);
    await index.load([]);
    // A fresh ledger was never reconciled: load() starts a pass that does it.
    await evictor.idle();
    return { index, evictor, ledger, link };
  }
  return { bucket, replica, tick: (ms = 1) => { clock += ms; }, keyPrefix };
}

/** Stores an entry in the bucket and adds it through `index`, then waits until the ledger counts it. */
async function store(c: Awaited<ReturnType<typeof cluster>>, r: Awaited<ReturnType<Awaited<ReturnType<typeof cluster>>['replica']>>, id: string, size: number) {
  c.bucket.put('blob', id, size);
  c.tick();
  const before = (await r.ledger.members()).size;
  r.index.add('blob', id, size);
  await eventually(async () => ((await r.ledger.members()).size > before ? true : undefined));
}


describe('ClusterIndex on redis-server', () => {
  it('counts every replica into one total and evicts the least recently used, whoever used it', async () => {
    const c = await cluster({ maxSize: 300, maxEntries: 1000 });
    const a = await c.replica('a');
    const b = await c.replica('b');
    await store(c, a, 'x', 100);
    await store(c, b, 'y', 100);
    await store(c, a, 'z', 100);
    expect(await b.ledger.totals()).toEqual({ bytes: 300, entries: 3 });
    // b reads x (learning it from the store first): x is now newer than y.
    b.index.add('blob', 'x', 100);
    c.tick();
    await eventually(async () => ((await b.ledger.oldest(1))[0] === 'blob y' ? true : undefined));
    await store(c, b, 'w', 100);
    await Promise.all([a.evictor.idle(), b.evictor.idle()]);
    await eventually(async () => (c.bucket.deleted.length > 0 ? true : undefined));
    await Promise.all([a.evictor.idle(), b.evictor.idle()]);
    expect(c.bucket.deleted).toEqual(['blob y']);
    expect(await a.ledger.totals()).toEqual({ bytes: 300, entries: 3 });
    expect(a.index.bytes + b.index.bytes).toBeGreaterThan(0);
  });

  it('never deletes an entry another replica is reading; deletes it once the read ended', async () => {
    const c = await cluster({ maxSize: 200, maxEntries: 1000 });
    const a = await c.replica('a');
    const b = await c.replica('b');
    await store(c, a, 'old', 100);
    await store(c, a, 'mid', 100);
    const unpin = b.index.pin('blob', 'old');
    await eventually(async () => ((await redisSmembers(c.keyPrefix, 'b')).includes('blob old') ? true : undefined));
    await store(c, a, 'new', 100);
    await eventually(async () => (c.bucket.deleted.length > 0 ? true : undefined));
    await a.evictor.idle();
    expect(c.bucket.deleted).toEqual(['blob mid']);
    expect(c.bucket.held.has('blob old')).toBe(true);
    unpin();
    await eventually(async () => ((await redisSmembers(c.keyPrefix, 'b')).length === 0 ? true : undefined));
    await store(c, a, 'newer', 100);
    await eventually(async () => (c.bucket.deleted.length > 1 ? true : undefined));
    await a.evictor.idle();
    expect(c.bucket.deleted).toEqual(['blob mid', 'blob old']);
  });

  it('two replicas over the limit at once evict only what is needed (one evictor at a time)', async () => {
    const c = await cluster({ maxSize: 1000, maxEntries: 5 });
    const a = await c.replica('a');
    const b = await c.replica('b');
    for (let i = 0; i < 5; i++) await store(c, i % 2 ? a : b, `e${i}`, 10);
    c.bucket.put('blob', 'f', 10);
    c.bucket.put('blob', 'g', 10);
    a.index.add('blob', 'f', 10);
    b.index.add('blob', 'g', 10);
    await eventually(async () => { const m = await a.ledger.members(); return m.has('blob f') && m.has('blob g') ? true : undefined; });
    await Promise.all([a.evictor.idle(), b.evictor.idle()]);
    // A wake that found the lease taken is caught up by the periodic tick; here, by waking both again.
    a.evictor.wake();
    b.evictor.wake();
    await Promise.all([a.evictor.idle(), b.evictor.idle()]);
    expect(c.bucket.deleted.sort()).toEqual(['blob e0', 'blob e1']);
    expect(await a.ledger.totals()).toEqual({ bytes: 50, entries: 5 });
  });

  it('delete on request (cache rm): at once when nobody reads it, else deferred and made the oldest', async () => {
    const c = await cluster({ maxSize: 1000, maxEntries: 1000 });
    const a = await c.replica('a');
    const b = await c.replica('b');
    await store(c, a, 'free', 10);
    await store(c, a, 'read', 10);
    await store(c, a, 'newer', 10);
    expect(await a.index.delete('blob', 'free')).toBe('deleted');
    expect(c.bucket.deleted).toEqual(['blob free']);
    const unpin = b.index.pin('blob', 'read');
    await eventually(async () => ((await redisSmembers(c.keyPrefix, 'b')).includes('blob read') ? true : undefined));
    expect(await a.index.delete('blob', 'read')).toBe('deferred');
    expect(c.bucket.held.has('blob read')).toBe(true);
    expect(await a.ledger.oldest(1)).toEqual(['blob read']);
    unpin();
    expect(await a.ledger.totals()).toEqual({ bytes: 20, entries: 2 });
  });

  it('reconciles with the stores when Redis lost its data: adopts what is stored, drops what is gone', async () => {
    const c = await cluster({ maxSize: 1000, maxEntries: 1000 });
    const a = await c.replica('a');
    await store(c, a, 'kept', 10);
    await store(c, a, 'lost', 20);
    c.bucket.held.delete('blob lost');
    c.bucket.put('manifest', 'sha256:m', 5);
    const result = await a.evictor.reconcile(Date.now());
    expect(result).toEqual({ adopted: 1, dropped: 1 });
    expect(await a.ledger.totals()).toEqual({ bytes: 15, entries: 2 });
    expect(await a.ledger.reconciledAt()).toBeGreaterThan(0);
  });

  it('a ledger call Redis refuses (not an outage) never fails the caller and is logged once, not per call', async () => {
    const c = await cluster({ maxSize: 1000, maxEntries: 100 });
    const a = await c.replica('a');
    const lines: string[] = [];
    const capture = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line); } });
    a.ledger.addPin = async () => { throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value'); };
    const index = new ClusterIndex({ stores: c.bucket.stores, limits: { maxSize: 1000, maxEntries: 100 }, ledger: a.ledger, evictor: a.evictor, log: capture, now: () => 1, touchEveryMs: 0, tickMs: 3_600_000 });
    indexes.push(index);
    for (let i = 0; i < 3; i++) index.pin('blob', `p${i}`)();
    // The rejected calls settle within the current turn of the event loop.
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => (JSON.parse(l) as { msg: string; op: string }).op)).toEqual(['pin']);
    expect(lines[0]).toMatch(/WRONGTYPE/);
  });

  it('with Redis stopped, adds and pins do not fail and nothing is evicted; back up, the missed entries are reconciled', async () => {
    const c = await cluster({ maxSize: 100, maxEntries: 1000 });
    const a = await c.replica('a');
    await store(c, a, 'before', 60);
    await redis.stop();
    try {
      await eventually(async () => (a.link.up ? undefined : true));
      c.bucket.put('blob', 'during', 60);
      a.index.add('blob', 'during', 60);
      const unpin = a.index.pin('blob', 'before');
      unpin();
      a.evictor.wake();
      await a.evictor.idle();
      expect(c.bucket.deleted).toEqual([]);
      expect(a.index.use('blob', 'during')).toBe(60);
    } finally {
      await redis.start();
    }
    await eventually(async () => (a.link.up ? true : undefined));
    // redis-server runs without persistence here: it came back empty, so the ledger must be rebuilt from the stores.
    const reconciles = a.evictor.stats.reconciles;
    expect(await a.evictor.reconcileDue()).toBe(true);
    a.evictor.wake();
    await a.evictor.idle();
    expect(a.evictor.stats.reconciles).toBe(reconciles + 1);
    await eventually(async () => (c.bucket.deleted.length === 1 ? true : undefined));
    expect(await a.ledger.totals()).toEqual({ bytes: 60, entries: 1 });
  });
});

async function redisSmembers(keyPrefix: string, replica: string): Promise<string[]> {
  const link = links[0]!;
  return link.client.smembers(`${keyPrefix}pins:${replica}`);
}

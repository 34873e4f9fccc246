// The "is Redis there?" signal against a real redis-server: stopped, hung (SIGSTOP) and back again, commands
// failing at once with RedisUnavailableError instead of queueing, and one log line per change without the password.
import { once } from 'node:events';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Leases, type Lease } from '../../../src/cluster/lease.js';
import { RedisLink, RedisUnavailableError, redactUrl } from '../../../src/cluster/redis-link.js';
import { deadPort } from '../../helpers/ports.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';

let redis: RedisServer;
let link: RedisLink | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});
afterEach(async () => {
  await link?.close();
  link = undefined;
});

function capture(): { log: pino.Logger; lines: () => { level: number; msg: string; [k: string]: unknown }[]; text: () => string } {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { log: pino({ level: 'info' }, stream), text: () => text, lines: () => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

async function connect(url = redis.url): Promise<{ link: RedisLink; logs: ReturnType<typeof capture> }> {
  const logs = capture();
  link = new RedisLink({ url, log: logs.log, commandTimeoutMs: 500, maxReconnectDelayMs: 200 });
  await link.whenUp(5000);
  return { link, logs };
}

describe('RedisLink', () => {
  it('goes down when Redis stops, fails commands at once, and comes back up by itself', async () => {
    const { link: l, logs } = await connect();
    const leases = new Leases(l, { owner: 'http://a:5000', keyPrefix: 'link-test:' });
    const acquired = await leases.acquire('evictor', 600);
    const lease = (acquired as { lease: Lease }).lease.keepAlive(100);
    const lost = once(lease, 'lost');
    const down = once(l, 'down');
    await redis.stop();
    await down;
    expect(l.up).toBe(false);
    expect(l.status()).toMatchObject({ up: false, error: expect.any(String) });
    await expect(leases.acquire('fill:x', 1000)).rejects.toBeInstanceOf(RedisUnavailableError);
    // The owner cannot renew, so it gives the lease up once its own deadline passes (nobody else could take it sooner).
    const [reason] = (await lost) as [string];
    expect(reason).toMatch(/^could not renew before the lease ran out: Redis is unavailable/);
    expect(lease.held).toBe(false);
    const up = once(l, 'up');
    await redis.start();
    await up;
    expect(l.status()).toMatchObject({ up: true });
    expect((await leases.acquire('fill:x', 1000)).acquired).toBe(true);
    const lines = logs.lines().map((x) => [x.level, x.msg]);
    expect(lines).toEqual([
      [30, 'Redis connected; coordinating with the other replicas'],
      [40, 'Redis unavailable; each replica fetches on its own until it is back'],
      [30, 'Redis connected; coordinating with the other replicas'],
    ]);
  });

  it('a hung Redis (SIGSTOP) fails commands within the command timeout and marks the link down', async () => {
    const { link: l } = await connect();
    const leases = new Leases(l, { owner: 'http://a:5000', keyPrefix: 'link-test:' });
    redis.freeze();
    try {
      const err = await leases.acquire('fill:hung', 1000).then(() => 'answered', (e: unknown) => e);
      expect(err).toBeInstanceOf(RedisUnavailableError);
      expect(String((err as Error).message)).toMatch(/timed out|timeout/i);
      if (l.up) await once(l, 'down');
      const up = once(l, 'up');
      redis.thaw();
      await up;
    } finally {
      redis.thaw();
    }
    // The timed-out SET ran once Redis woke up: the lease exists, named ours, but nobody holds its token, so it
    // simply expires. Other leases work again at once.
    expect(await leases.holder('fill:hung')).toMatchObject({ owner: 'http://a:5000' });
    expect((await leases.acquire('fill:after', 1000)).acquired).toBe(true);
  });

  it('a command Redis refuses is the caller\'s error, not an outage', async () => {
    const { link: l } = await connect();
    await expect(l.run((c) => c.call('NO-SUCH-COMMAND'))).rejects.toMatchObject({ name: 'ReplyError' });
    expect(l.up).toBe(true);
  });

  it('starts down when Redis is unreachable, says so once, and never logs the password', async () => {
    const logs = capture();
    const url = `redis://ocimirror:s3cret-pass@127.0.0.1:${await deadPort()}`;
    link = new RedisLink({ url, log: logs.log, commandTimeoutMs: 300, maxReconnectDelayMs: 50 });
    await expect(link.whenUp(1000)).rejects.toBeInstanceOf(RedisUnavailableError);
    expect(link.status()).toMatchObject({ up: false, error: expect.stringMatching(/ECONNREFUSED/) });
    await expect(link.run((c) => c.ping())).rejects.toBeInstanceOf(RedisUnavailableError);
    const warnings = logs.lines().filter((x) => x.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ redis: expect.stringContaining('ocimirror:redacted@127.0.0.1') });
    expect(logs.text()).not.toContain('s3cret-pass');
    expect(redactUrl('rediss://:pw@h:6380/2')).toBe('rediss://:redacted@h:6380/2');
  });
});

// Rate-limit headers as Docker Hub sends them, and whatever else an upstream may send: the parser never throws,
// reads back what was written, ignores junk; an endpoint goes "low" below the threshold until its window resets,
// and honours Retry-After — on the injected clock.
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EndpointRateLimit, parseQuota, parseRateLimit, parseRetryAfter } from '../../../src/upstream/rate-limit.js';

const count = fc.integer({ min: 0, max: 2 ** 31 });
const window = fc.integer({ min: 1, max: 86_400 });

describe('parseQuota / parseRateLimit', () => {
  it('reads back N;w=S however it is spaced, and a bare N', () => {
    fc.assert(fc.property(count, window, fc.constantFrom('', ' ', '  '), (n, w, sp) => {
      expect(parseQuota(`${sp}${n}${sp};${sp}w=${w}${sp}`)).toEqual({ count: n, windowSeconds: w });
      expect(parseQuota(`${n}`)).toEqual({ count: n });
    }));
  });

  it('a list of quota policies gives its first item; unknown parameters are ignored', () => {
    expect(parseQuota('10, 10;w=1, 50;w=60')).toEqual({ count: 10 });
    expect(parseQuota('100;w=21600;comment="anonymous"')).toEqual({ count: 100, windowSeconds: 21600 });
  });

  it('never throws, and anything that is not a count is undefined', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
      const q = parseQuota(s);
      if (q === undefined) return;
      expect(Number.isInteger(q.count) && q.count >= 0 && q.count <= 2 ** 31).toBe(true);
      if (q.windowSeconds !== undefined) expect(q.windowSeconds > 0 && q.windowSeconds <= 86_400).toBe(true);
    }));
    for (const junk of ['', '-1', '1.5', 'ten', '99999999999', ';w=5', '5;w=-3x']) expect(parseQuota(junk)?.windowSeconds, junk).toBeUndefined();
    for (const junk of ['', '-1', '1.5', 'ten', '99999999999', ';w=5']) expect(parseQuota(junk), junk).toBeUndefined();
  });

  it('Docker Hub headers: limit, remaining, window and source', () => {
    expect(parseRateLimit({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600', 'docker-ratelimit-source': '192.0.2.7' })).toEqual({
      limit: { count: 100, windowSeconds: 21600 }, remaining: { count: 76, windowSeconds: 21600 }, windowSeconds: 21600, source: '192.0.2.7',
    });
    // The draft RFC's form: the window from ratelimit-reset; no remaining → nothing to act on.
    expect(parseRateLimit({ 'ratelimit-remaining': '3', 'ratelimit-reset': '30' })).toEqual({ remaining: { count: 3 }, windowSeconds: 30 });
    expect(parseRateLimit({ 'ratelimit-limit': '100;w=60' })).toBeUndefined();
    // A source that is not one printable token is dropped, never logged.
    expect(parseRateLimit({ 'ratelimit-remaining': '1', 'docker-ratelimit-source': 'a b\n' })).toEqual({ remaining: { count: 1 } });
  });

  it('any header values: never throws; a result always has a remaining count', () => {
    const value = fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.constant(undefined));
    fc.assert(fc.property(value, value, value, value, (limit, remaining, reset, source) => {
      const r = parseRateLimit({ 'ratelimit-limit': limit, 'ratelimit-remaining': remaining, 'ratelimit-reset': reset, 'docker-ratelimit-source': source });
      if (r) expect(Number.isInteger(r.remaining.count)).toBe(true);
    }));
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('delta-seconds and HTTP-date, capped at a day, never in the past', () => {
    expect(parseRetryAfter('30', now)).toBe(now + 30_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:01:00 GMT', now)).toBe(now + 60_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(now);
    expect(parseRetryAfter('9999999', now)).toBe(now + 86_400_000);
    for (const junk of [undefined, '', '-5', 'soon', '1e3']) expect(parseRetryAfter(junk, now), String(junk)).toBeUndefined();
  });

  it('any string: undefined or a time within [now, now + 1 day]', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
      const t = parseRetryAfter(s, now);
      if (t !== undefined) expect(t >= now && t <= now + 86_400_000).toBe(true);
    }));
  });
});

describe('EndpointRateLimit', () => {
  function endpoint(threshold: { percent: number } | { count: number } = { percent: 10 }) {
    let t = 1_000_000;
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => { lines.push((JSON.parse(s) as { msg: string }).msg); } });
    const rl = new EndpointRateLimit('https://hub', threshold, log, () => t);
    return { rl, lines, advance: (ms: number) => { t += ms; }, now: () => t };
  }
  const headers = (remaining: number, limit = 100, w = 60) => ({ 'ratelimit-limit': `${limit};w=${w}`, 'ratelimit-remaining': `${remaining};w=${w}` });

  it('below 10% of the limit: low until the window resets; logged once per window', () => {
    const { rl, lines, advance, now } = endpoint();
    rl.observe(200, headers(10));
    expect(rl.isLow()).toBe(false);
    rl.observe(200, headers(9));
    rl.observe(200, headers(8));
    expect(rl.isLow()).toBe(true);
    expect(rl.snapshot()).toEqual({ endpoint: 'https://hub', limit: 100, remaining: 8, resetAt: now() + 60_000 });
    expect(lines.filter((l) => /rate limit nearly used up/.test(l))).toHaveLength(1);
    advance(59_999);
    expect(rl.isLow()).toBe(true);
    advance(1);
    expect(rl.isLow()).toBe(false);
    rl.observe(200, headers(5));
    expect(lines.filter((l) => /rate limit nearly used up/.test(l))).toHaveLength(2);
    // Headroom regained (another window): no longer low.
    rl.observe(200, headers(80));
    expect(rl.isLow()).toBe(false);
  });

  it('a count threshold; without a limit only an exhausted quota is low', () => {
    const byCount = endpoint({ count: 20 }).rl;
    byCount.observe(200, headers(19, 1000));
    expect(byCount.isLow()).toBe(true);
    const noLimit = endpoint().rl;
    noLimit.observe(200, { 'ratelimit-remaining': '1' });
    expect(noLimit.isLow()).toBe(false);
    noLimit.observe(200, { 'ratelimit-remaining': '0' });
    expect(noLimit.isLow()).toBe(true);
  });

  it('429 with Retry-After: backing off until then; a 429 without it changes nothing', () => {
    const { rl, advance } = endpoint();
    rl.observe(429, {});
    expect(rl.isBackingOff()).toBe(false);
    expect(rl.known).toBe(false);
    rl.observe(429, { 'retry-after': '30' });
    expect(rl.isBackingOff()).toBe(true);
    expect(rl.known).toBe(true);
    advance(30_000);
    expect(rl.isBackingOff()).toBe(false);
  });
});

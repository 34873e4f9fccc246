// The circuit per endpoint: opens on consecutive failures, logs each state change once, probes back with backoff.
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EndpointHealth } from '../../../src/upstream/health.js';

function captured() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({ write(chunk: Buffer, _e, done) { lines.push(JSON.parse(chunk.toString())); done(); } });
  return { log: pino({ level: 'info' }, stream), lines };
}

const cfg = { failureThreshold: 2, cooldownMs: 100, maxCooldownMs: 350, probeIntervalMs: 50 };

describe('EndpointHealth', () => {
  it('opens after failureThreshold consecutive failures, and logs it once', () => {
    const { log, lines } = captured();
    const changes: string[] = [];
    const h = new EndpointHealth('https://a', cfg, log, (_n, s) => changes.push(s));
    h.recordFailure('x');
    expect(h.isDown).toBe(false);
    h.recordFailure('y');
    expect(h.isDown).toBe(true);
    for (let i = 0; i < 10; i++) h.recordFailure('z');
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    expect(changes).toEqual(['down']);
    h.recordSuccess();
    h.recordSuccess();
    expect(h.isDown).toBe(false);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['endpoint marked down; trying it last until a probe succeeds', 'endpoint is healthy again']);
    expect(changes).toEqual(['down', 'up']);
  });

  it('a success in between resets the count', () => {
    const h = new EndpointHealth('https://a', cfg, pino({ level: 'silent' }));
    h.recordFailure('x');
    h.recordSuccess();
    h.recordFailure('x');
    expect(h.isDown).toBe(false);
  });

  it('is due for a probe after the cooldown; failed probes double it up to the cap', () => {
    const h = new EndpointHealth('https://a', { ...cfg, failureThreshold: 1 }, pino({ level: 'silent' }));
    expect(h.probeDue()).toBe(false);
    const t0 = Date.now();
    h.recordFailure('x');
    expect(h.probeDue(t0 + 50)).toBe(false);
    expect(h.probeDue(t0 + 5_000)).toBe(true);
    const t1 = Date.now();
    h.probeFailed('still down');
    expect(h.probeDue(t1 + 150)).toBe(false);
    expect(h.probeDue(t1 + 250)).toBe(true);
    h.probeFailed('still down');
    h.probeFailed('still down');
    const t2 = Date.now();
    h.probeFailed('still down');
    expect(h.probeDue(t2 + 340)).toBe(false);
    expect(h.probeDue(t2 + 400)).toBe(true);
  });

  it('5xx for one request, however often, never opens the circuit while GET /v2/ answers (issue 8 rule 12)', async () => {
    let probes = 0;
    const h = new EndpointHealth('https://a', { ...cfg, failureThreshold: 1 }, pino({ level: 'silent' }), undefined, async () => { probes++; return 200; });
    for (let i = 0; i < 10; i++) await h.recordRequestFailure('GET /v2/x/manifests/sha256:blob', 'HTTP 500');
    expect(probes).toBe(10);
    expect(h.isDown).toBe(false);
    expect(h.triedLast()).toBe(false);
  });

  it('a 5xx followed by a failing GET /v2/ opens the circuit, as a transport failure does', async () => {
    for (const probe of [async () => 503, async () => { throw new Error('ECONNREFUSED'); }]) {
      const h = new EndpointHealth('https://a', cfg, pino({ level: 'silent' }), undefined, probe);
      await h.recordRequestFailure('GET /v2/x/manifests/1', 'HTTP 503');
      expect(h.isDown).toBe(true);
    }
  });

  it('distinct requests failing in a row put the endpoint last for a cooldown, without marking it down', async () => {
    const h = new EndpointHealth('https://a', cfg, pino({ level: 'silent' }), undefined, async () => 200);
    await h.recordRequestFailure('/x/manifests/1', 'HTTP 500');
    await h.recordRequestFailure('/x/manifests/1', 'HTTP 500');
    expect(h.triedLast()).toBe(false);
    await h.recordRequestFailure('/x/manifests/2', 'HTTP 500');
    const now = Date.now();
    expect(h.triedLast(now)).toBe(true);
    expect(h.isDown).toBe(false);
    expect(h.triedLast(now + cfg.cooldownMs + 1)).toBe(false);
    h.recordSuccess();
    expect(h.triedLast(now)).toBe(false);
  });
});

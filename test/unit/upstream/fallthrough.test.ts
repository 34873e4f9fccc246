// Fall-through order and the status a client gets when every endpoint failed, with fake endpoint clients.
import { Readable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { EndpointClient, UpstreamResponse } from '../../../src/upstream/client.js';
import { AllEndpointsFailed, MirrorUpstream, classify, isTransportError, scopeFor, type UpstreamEndpoint } from '../../../src/upstream/fallthrough.js';
import { EndpointHealth } from '../../../src/upstream/health.js';
import { upstreamFailure } from '../../../src/upstream/service.js';

type Answer = number | Error;
const HEALTH = { failureThreshold: 1, cooldownMs: 1000, maxCooldownMs: 8000, probeIntervalMs: 500 };

function transportError(code: string): Error {
  return Object.assign(new Error(`${code} happened`), { code });
}

function response(status: number, authAttempted = false): UpstreamResponse {
  const body = Object.assign(Readable.from([]), { dump: async () => undefined });
  return { status, headers: {}, body, authAttempted };
}

function endpoint(name: string, answers: Answer[], rewrites = true, health = new EndpointHealth(name, HEALTH, pino({ level: 'silent' }))): UpstreamEndpoint & { paths: string[] } {
  const paths: string[] = [];
  const client = {
    name,
    endpoint: { apiRoot: '/v2' },
    async request(_method: string, path: string) {
      paths.push(path);
      const a = answers.length > 1 ? answers.shift()! : answers[0]!;
      if (a instanceof Error) throw a;
      return response(a, a === 401 || a === 403);
    },
  } as unknown as EndpointClient;
  return { client, health, rewrites, paths };
}

const req = { method: 'GET' as const, repo: 'library/x', suffix: '/manifests/1.0', headers: {} };

async function failure(mirror: MirrorUpstream): Promise<AllEndpointsFailed> {
  try { await mirror.fetch(req); } catch (err) { if (err instanceof AllEndpointsFailed) return err; throw err; }
  throw new Error('expected every endpoint to fail');
}

describe('MirrorUpstream.fetch: every fall-through rule', () => {
  it.each([
    ['connection refused', transportError('ECONNREFUSED')],
    ['connection reset', transportError('ECONNRESET')],
    ['connect timeout', transportError('UND_ERR_CONNECT_TIMEOUT')],
    ['response timeout', transportError('UND_ERR_HEADERS_TIMEOUT')],
    ['500', 500], ['502', 502], ['503', 503], ['429', 429], ['401 after auth', 401], ['403 after auth', 403], ['404', 404],
  ] as [string, Answer][])('%s → the next endpoint serves', async (_what, answer) => {
    const first = endpoint('https://a.example', [answer]);
    const second = endpoint('https://b.example', [200]);
    const got = await new MirrorUpstream('docker.io', [first, second], {}).fetch(req);
    expect(got.endpoint).toBe(second);
    expect(got.attempts.map((a) => a.endpoint)).toEqual(['https://a.example', 'https://b.example']);
    expect(got.attempts[0]).toMatchObject(answer instanceof Error ? { error: expect.stringContaining((answer as Error & { code: string }).code) } : { status: answer });
  });

  it('the first success wins; later endpoints are not asked', async () => {
    const first = endpoint('https://a.example', [200]);
    const second = endpoint('https://b.example', [200]);
    await new MirrorUpstream('docker.io', [first, second], {}).fetch(req);
    expect(second.paths).toEqual([]);
  });

  it('every endpoint said not-found → allNotFound', async () => {
    const err = await failure(new MirrorUpstream('docker.io', [endpoint('a', [404]), endpoint('b', [404])], {}));
    expect(err.allNotFound).toBe(true);
    expect(err.attempts.map((a) => a.status)).toEqual([404, 404]);
  });

  it('mixed failures are not "not found"', async () => {
    const err = await failure(new MirrorUpstream('docker.io', [endpoint('a', [404]), endpoint('b', [transportError('ECONNREFUSED')]), endpoint('c', [500])], {}));
    expect(err.allNotFound).toBe(false);
    expect(err.message).toMatch(/a: HTTP 404; b: ECONNREFUSED.*; c: HTTP 500/);
  });

  it('rewrite rules apply to listed endpoints, not to the registry\'s own default endpoint', async () => {
    const listed = endpoint('a', [404]);
    const own = endpoint('b', [200], false);
    await new MirrorUpstream('docker.io', [listed, own], { '^library/(.*)$': 'mirrored/$1' }).fetch(req);
    expect(listed.paths).toEqual(['/mirrored/x/manifests/1.0']);
    expect(own.paths).toEqual(['/library/x/manifests/1.0']);
  });
});

describe('health memory inside fall-through', () => {
  it('transport errors open the circuit; the endpoint is then tried last', async () => {
    const a = endpoint('a', [transportError('UND_ERR_CONNECT_TIMEOUT'), 200]);
    const b = endpoint('b', [200]);
    const mirror = new MirrorUpstream('docker.io', [a, b], {});
    await mirror.fetch(req);
    expect(a.health.isDown).toBe(true);
    expect(mirror.ordered().map((e) => e.client.name)).toEqual(['b', 'a']);
    await mirror.fetch(req);
    expect(a.paths).toHaveLength(1);
  });

  it.each([['a 5xx', 503], ['a response timeout', transportError('UND_ERR_HEADERS_TIMEOUT')]] as [string, Answer][])('%s opens the circuit only when GET /v2/ fails too', async (_what, answer) => {
    for (const [probe, down] of [[503, true], [200, false]] as const) {
      let probed!: () => void;
      const checked = new Promise<void>((resolve) => { probed = resolve; });
      const health = new EndpointHealth('c', HEALTH, pino({ level: 'silent' }), undefined, async () => { probed(); return probe; });
      const five = endpoint('c', [answer], true, health);
      await new MirrorUpstream('docker.io', [five, endpoint('d', [200])], {}).fetch(req);
      await checked;
      await health.recordRequestFailure('GET /again', 'again');
      expect(health.isDown, `probe ${probe}`).toBe(down);
    }
  });

  it.each([[404], [401], [403], [429]])('%s does not count against health', async (status) => {
    const a = endpoint('a', [status]);
    await new MirrorUpstream('docker.io', [a, endpoint('b', [200])], {}).fetch(req);
    expect(a.health.isDown).toBe(false);
  });

  it('an open endpoint is still tried after the healthy ones failed', async () => {
    const a = endpoint('a', [transportError('ECONNREFUSED'), 200]);
    const b = endpoint('b', [404]);
    const mirror = new MirrorUpstream('docker.io', [a, b], {});
    await failure(mirror);
    const got = await mirror.fetch(req);
    expect(got.endpoint).toBe(a);
    expect(got.attempts.map((x) => x.endpoint)).toEqual(['b', 'a']);
  });
});

describe('classify / isTransportError', () => {
  it('2xx ok, 404 not-found, everything else failed', () => {
    expect([200, 206, 404, 401, 403, 429, 500, 301].map((status) => classify({ status }))).toEqual(['ok', 'ok', 'not-found', 'failed', 'failed', 'failed', 'failed', 'failed']);
  });
  it('connection trouble is a transport error; a token server refusal is not', () => {
    expect(isTransportError(transportError('ECONNREFUSED'))).toBe(true);
    expect(isTransportError({ cause: { code: 'UND_ERR_SOCKET' } })).toBe(true);
    expect(isTransportError(Object.assign(new Error('token server answered 401'), { name: 'TokenError' }))).toBe(false);
  });
});

describe('upstreamFailure: the status a client gets', () => {
  const allNotFound = new AllEndpointsFailed('docker.io', [{ endpoint: 'https://a', status: 404, ms: 1 }, { endpoint: 'https://b', status: 404, ms: 1 }], true);
  const mixed = new AllEndpointsFailed('docker.io', [{ endpoint: 'https://a', status: 404, ms: 1 }, { endpoint: 'https://b', error: 'ECONNREFUSED: connect ECONNREFUSED', ms: 1 }], false);

  it('all not-found → 404 MANIFEST_UNKNOWN / BLOB_UNKNOWN, whatever failureStatus says', () => {
    for (const fs of [503, 504, 404] as const) {
      expect(upstreamFailure(allNotFound, 'MANIFEST_UNKNOWN', fs)).toMatchObject({ status: 404, code: 'MANIFEST_UNKNOWN' });
      expect(upstreamFailure(allNotFound, 'BLOB_UNKNOWN', fs)).toMatchObject({ status: 404, code: 'BLOB_UNKNOWN' });
    }
  });

  it('mixed → 503 UNAVAILABLE with a detail naming each endpoint', () => {
    const e = upstreamFailure(mixed, 'MANIFEST_UNKNOWN', 503);
    expect(e).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(e.toJSON().errors[0]?.detail).toEqual({ registry: 'docker.io', attempts: ['https://a: HTTP 404', 'https://b: ECONNREFUSED: connect ECONNREFUSED'] });
  });

  it('failureStatus 504 → 504 UNAVAILABLE; 404 → 404 with the not-found code (old containerd)', () => {
    expect(upstreamFailure(mixed, 'MANIFEST_UNKNOWN', 504)).toMatchObject({ status: 504, code: 'UNAVAILABLE' });
    expect(upstreamFailure(mixed, 'BLOB_UNKNOWN', 404)).toMatchObject({ status: 404, code: 'BLOB_UNKNOWN' });
  });

  it('an earlier failed attempt (e.g. a digest mismatch) makes a later all-404 an outage, not a 404', () => {
    const e = upstreamFailure(allNotFound, 'MANIFEST_UNKNOWN', 503, [{ endpoint: 'https://c', error: 'manifest digest mismatch', ms: 1 }]);
    expect(e).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect((e.detail as { attempts: string[] }).attempts[0]).toBe('https://c: manifest digest mismatch');
  });
});

describe('token scope', () => {
  const at = (apiRoot: string) => ({ client: { endpoint: { apiRoot } } }) as unknown as UpstreamEndpoint;
  it('names the repository as the endpoint sees it, including a Harbor proxy-cache project in the API root', () => {
    expect(scopeFor(at('/v2'), 'library/alpine')).toBe('repository:library/alpine:pull');
    expect(scopeFor(at('/v2/dockerhub'), 'library/alpine')).toBe('repository:dockerhub/library/alpine:pull');
    expect(scopeFor(at('/custom/root'), 'library/alpine')).toBe('repository:library/alpine:pull');
  });
});

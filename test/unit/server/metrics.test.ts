// /metrics via app.inject(): Prometheus naming, request counting by route/status/registry, upstream attempts
// counted once per attempt list, cache and endpoint figures read on scrape.
import { Readable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { CacheStats } from '../../../src/cache/stats.js';
import { OciError } from '../../../src/oci/errors.js';
import type { BlobRequest, ManifestRequest, RegistryService } from '../../../src/oci/service.js';
import { buildApp } from '../../../src/server/app.js';
import { createMetrics, failureReason } from '../../../src/server/metrics.js';
import { AllEndpointsFailed } from '../../../src/upstream/fallthrough.js';
import { upstreamFailure } from '../../../src/upstream/service.js';

const DIGEST = `sha256:${'2'.repeat(64)}`;
const MANIFEST = Buffer.from('{}');
// One attempt list shared by two answers, as a running fill shares its attempts with every joined client.
const SHARED = [{ endpoint: 'http://dead:1', error: 'ECONNREFUSED', ms: 3 }, { endpoint: 'http://up:2', status: 200, ms: 40 }];

class StubService implements RegistryService {
  async manifest(req: ManifestRequest) {
    if (req.repo.endsWith('missing')) throw new OciError('MANIFEST_UNKNOWN');
    if (req.repo.endsWith('down')) {
      throw upstreamFailure(new AllEndpointsFailed('docker.io', [{ endpoint: 'http://dead:1', error: 'ECONNREFUSED', ms: 2 }, { endpoint: 'http://up:2', status: 502, ms: 9 }], false), 'MANIFEST_UNKNOWN', 503);
    }
    return { digest: DIGEST, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: MANIFEST.length, body: MANIFEST, endpoint: 'http://up:2', attempts: [{ endpoint: 'http://up:2', status: 200, ms: 12 }] };
  }
  async blob(req: BlobRequest) {
    return { digest: req.digest, size: 3, plan: { kind: 'full' as const, start: 0 as const, end: 2 }, endpoint: 'http://up:2', attempts: SHARED, stream: Readable.from([Buffer.from('abc')]) };
  }
  async tags() { return { body: Buffer.from('{}'), contentType: 'application/json' }; }
  async referrers() { return { body: Buffer.from('{}'), contentType: 'application/json' }; }
}

let app: FastifyInstance;
let stats: CacheStats;
const endpoints = [{ name: 'http://dead:1', isDown: true }, { name: 'http://up:2', isDown: false }];

beforeEach(async () => {
  stats = new CacheStats();
  const metrics = createMetrics({
    cache: { stats, index: { bytes: 1234, entries: 5, maxSize: 10_000 }, fillsInProgress: 2 },
    endpoints: () => endpoints,
    registryLabel: (r) => (r === 'docker.io' ? r : '*'),
    memoryBytes: () => 4096,
    waitingTurn: () => 7,
  });
  app = buildApp({
    service: new StubService(), via: '1.1 test', logger: pino({ level: 'silent' }),
    routing: { defaultRegistry: 'docker.io', resolve: (r: string) => r },
    plugins: [metrics.plugin],
  });
  await app.ready();
});
afterEach(async () => { await app.close(); });

async function scrape(): Promise<string> {
  const res = await app.inject('/metrics');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body;
}

/** The value of one series, e.g. value(text, 'ocimirror_cache_hits_total{kind="blob"}'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('counts requests by route, method, status and registry; unconfigured registries collapse to "*"', async () => {
    await app.inject(`/v2/library/alpine/manifests/latest?ns=docker.io`);
    await app.inject(`/v2/library/alpine/manifests/latest?ns=docker.io`);
    await app.inject(`/v2/library/missing/manifests/latest?ns=docker.io`);
    await app.inject(`/v2/x/y/blobs/${DIGEST}?ns=ghcr.io`);
    await app.inject('/v2/');
    await app.inject('/nope');
    const text = await scrape();
    expect(value(text, 'ocimirror_http_requests_total{route="manifests",method="GET",status="200",registry="docker.io"}')).toBe(2);
    expect(value(text, 'ocimirror_http_requests_total{route="manifests",method="GET",status="404",registry="docker.io"}')).toBe(1);
    expect(value(text, 'ocimirror_http_requests_total{route="blobs",method="GET",status="200",registry="*"}')).toBe(1);
    expect(value(text, 'ocimirror_http_requests_total{route="base",method="GET",status="200",registry=""}')).toBe(1);
    expect(value(text, 'ocimirror_http_requests_total{route="unmatched",method="GET",status="404",registry=""}')).toBe(1);
    expect(value(text, 'ocimirror_http_request_duration_seconds_count{route="manifests"}')).toBe(3);
  });

  it('counts each upstream attempt once, even when several answers share one attempt list', async () => {
    await app.inject(`/v2/a/blobs/${DIGEST}?ns=docker.io`);
    await app.inject(`/v2/a/blobs/${DIGEST}?ns=docker.io`);
    const text = await scrape();
    expect(value(text, 'ocimirror_upstream_requests_total{endpoint="http://dead:1",status="error"}')).toBe(1);
    expect(value(text, 'ocimirror_upstream_requests_total{endpoint="http://up:2",status="200"}')).toBe(1);
    expect(value(text, 'ocimirror_upstream_failures_total{endpoint="http://dead:1",reason="transport"}')).toBe(1);
    expect(value(text, 'ocimirror_upstream_failures_total{endpoint="http://up:2",reason="transport"}')).toBeUndefined();
    expect(value(text, 'ocimirror_upstream_request_duration_seconds_count{endpoint="http://up:2"}')).toBe(1);
    expect(value(text, 'ocimirror_upstream_request_duration_seconds_sum{endpoint="http://up:2"}')).toBeCloseTo(0.04);
  });

  it('counts the attempts of a request that failed on every endpoint (they travel on the error)', async () => {
    expect((await app.inject('/v2/library/down/manifests/1?ns=docker.io')).statusCode).toBe(503);
    const text = await scrape();
    expect(value(text, 'ocimirror_http_requests_total{route="manifests",method="GET",status="503",registry="docker.io"}')).toBe(1);
    expect(value(text, 'ocimirror_upstream_failures_total{endpoint="http://dead:1",reason="transport"}')).toBe(1);
    expect(value(text, 'ocimirror_upstream_failures_total{endpoint="http://up:2",reason="5xx"}')).toBe(1);
    expect(value(text, 'ocimirror_upstream_requests_total{endpoint="http://up:2",status="502"}')).toBe(1);
  });

  it('reads cache counters, cache size and endpoint health at scrape time', async () => {
    stats.hits.blob = 3; stats.misses.blob = 4; stats.hits.manifest = 1; stats.misses.manifest = 2;
    stats.bytesFromCache = 300; stats.bytesFromUpstream = 400; stats.evictions = 6; stats.evictedBytes = 600;
    let text = await scrape();
    expect(value(text, 'ocimirror_cache_hits_total{kind="blob"}')).toBe(3);
    expect(value(text, 'ocimirror_cache_misses_total{kind="manifest"}')).toBe(2);
    expect(value(text, 'ocimirror_blob_bytes_served_total{source="cache"}')).toBe(300);
    expect(value(text, 'ocimirror_blob_bytes_served_total{source="upstream"}')).toBe(400);
    expect(value(text, 'ocimirror_cache_evictions_total')).toBe(6);
    expect(value(text, 'ocimirror_cache_evicted_bytes_total')).toBe(600);
    expect(value(text, 'ocimirror_cache_size_bytes')).toBe(1234);
    expect(value(text, 'ocimirror_cache_entries')).toBe(5);
    expect(value(text, 'ocimirror_cache_max_size_bytes')).toBe(10_000);
    expect(value(text, 'ocimirror_cache_fills_in_progress')).toBe(2);
    expect(value(text, 'ocimirror_cache_memory_bytes')).toBe(4096);
    expect(value(text, 'ocimirror_http_requests_waiting')).toBe(7);
    expect(value(text, 'ocimirror_upstream_endpoint_up{endpoint="http://dead:1"}')).toBe(0);
    expect(value(text, 'ocimirror_upstream_endpoint_up{endpoint="http://up:2"}')).toBe(1);
    // A second scrape mirrors the running totals again rather than adding them twice.
    stats.hits.blob = 5;
    endpoints[0]!.isDown = false;
    text = await scrape();
    expect(value(text, 'ocimirror_cache_hits_total{kind="blob"}')).toBe(5);
    expect(value(text, 'ocimirror_upstream_endpoint_up{endpoint="http://dead:1"}')).toBe(1);
    endpoints[0]!.isDown = true;
  });

  it('uses Prometheus naming: every series is ocimirror_*, counters end in _total', async () => {
    const text = await scrape();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1] as string, type: m[2] as string }));
    expect(types.length).toBeGreaterThan(15);
    for (const t of types) {
      expect(t.name).toMatch(/^ocimirror_/);
      if (t.type === 'counter') expect(t.name).toMatch(/_total$/);
    }
  });

  it('does not treat 404 as an endpoint failure', () => {
    expect(failureReason({ endpoint: 'e', status: 404, ms: 1 })).toBeUndefined();
    expect(failureReason({ endpoint: 'e', status: 503, ms: 1 })).toBe('5xx');
    expect(failureReason({ endpoint: 'e', status: 429, ms: 1 })).toBe('429');
    expect(failureReason({ endpoint: 'e', status: 401, ms: 1 })).toBe('auth');
  });
});

// GET /metrics: Prometheus text from a registry of our own (never prom-client's global one, so several proxies in
// one process — tests — do not collide). Request and upstream series are observed in an onResponse hook from the
// per-request context; cache and endpoint series are read from their owners at scrape time.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheStats } from '../cache/stats.js';
import { AllEndpointsFailed, type Attempt } from '../upstream/fallthrough.js';
import './context.js';

export const METRICS_PATH = '/metrics';

/** What /metrics reads on every scrape; narrow so a unit test can pass plain objects. */
export interface MetricsSources {
  cache: {
    readonly stats: CacheStats;
    readonly index: { readonly bytes: number; readonly entries: number; readonly maxSize: number };
    readonly fillsInProgress: number;
  };
  endpoints(): { name: string; isDown: boolean }[];
  /** Rate limits the endpoints announced (ratelimit-limit / ratelimit-remaining), when known. */
  rateLimits?(): { endpoint: string; limit?: number; remaining?: number }[];
  /** Label value for a routed registry; collapse anything not configured (a "*" mirror) to keep cardinality bounded. */
  registryLabel?(registry: string): string;
  /** Label value for an endpoint: the ones "*" opened for a client collapse to "*" too. */
  endpointLabel?(endpoint: string): string;
  /** Bytes of small entries held in memory (cache.memorySize). */
  memoryBytes?(): number;
  /** Registry requests parsed and waiting for their turn (turns.ts): above zero, the process is saturated. */
  waitingTurn?(): number;
}

/** Requests and failures so far, keyed by endpoint name or registry label. */
export type Counts = Map<string, { requests: number; failures: number }>;

export interface ProxyMetrics {
  readonly registry: Registry;
  /** The counters behind /metrics, summed per endpoint (failures: fall-through reasons) and per registry (failures: 5xx answers). */
  counts(): Promise<{ endpoints: Counts; registries: Counts }>;
  /** Registers GET /metrics and the hook that counts every request. */
  plugin(app: FastifyInstance): void;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createMetrics(src: MetricsSources): ProxyMetrics {
  const registry = new Registry();
  const reg = { registers: [registry] };
  collectDefaultMetrics({ register: registry, prefix: 'ocimirror_' });

  const requests = new Counter({ ...reg, name: 'ocimirror_http_requests_total', help: 'HTTP requests answered, by route, method, status and routed registry', labelNames: ['route', 'method', 'status', 'registry'] });
  const requestSeconds = new Histogram({ ...reg, name: 'ocimirror_http_request_duration_seconds', help: 'Time to answer a request (whole body sent), by route', labelNames: ['route'], buckets: SECONDS });
  const upstreamRequests = new Counter({ ...reg, name: 'ocimirror_upstream_requests_total', help: 'Requests sent to upstream endpoints, by endpoint and status ("error" for transport failures)', labelNames: ['endpoint', 'status'] });
  const upstreamFailures = new Counter({ ...reg, name: 'ocimirror_upstream_failures_total', help: 'Upstream attempts that made the proxy fall through (transport error, 5xx, 429, 401/403), by endpoint and reason', labelNames: ['endpoint', 'reason'] });
  const upstreamSeconds = new Histogram({ ...reg, name: 'ocimirror_upstream_request_duration_seconds', help: 'Time from sending an upstream request to its response headers (or failure), by endpoint', labelNames: ['endpoint'], buckets: SECONDS });

  // Endpoints and cache figures are owned elsewhere; mirror them on scrape rather than keeping a second count.
  new Gauge({
    ...reg, name: 'ocimirror_upstream_endpoint_up', help: 'Endpoint health: 1 = up, 0 = circuit open (known-dead, tried last until a probe succeeds)', labelNames: ['endpoint'],
    collect() { this.reset(); for (const e of src.endpoints()) this.set({ endpoint: e.name }, e.isDown ? 0 : 1); },
  });
  new Gauge({
    ...reg, name: 'ocimirror_upstream_ratelimit_remaining', help: 'Requests the endpoint last said remain in its rate-limit window (ratelimit-remaining)', labelNames: ['endpoint'],
    collect() { this.reset(); for (const r of src.rateLimits?.() ?? []) if (r.remaining !== undefined) this.set({ endpoint: r.endpoint }, r.remaining); },
  });
  new Gauge({
    ...reg, name: 'ocimirror_upstream_ratelimit_limit', help: 'Requests the endpoint allows per rate-limit window (ratelimit-limit)', labelNames: ['endpoint'],
    collect() { this.reset(); for (const r of src.rateLimits?.() ?? []) if (r.limit !== undefined) this.set({ endpoint: r.endpoint }, r.limit); },
  });
  const stats = () => src.cache.stats;
  mirrorCounter(reg, 'ocimirror_cache_hits_total', 'Blob and manifest requests answered from the cache, by kind', ['kind'], (c) => {
    c.inc({ kind: 'blob' }, stats().hits.blob); c.inc({ kind: 'manifest' }, stats().hits.manifest);
  });
  mirrorCounter(reg, 'ocimirror_cache_misses_total', 'Blob and manifest requests that needed an upstream (a blob joining a running fill counts too), by kind', ['kind'], (c) => {
    c.inc({ kind: 'blob' }, stats().misses.blob); c.inc({ kind: 'manifest' }, stats().misses.manifest);
  });
  mirrorCounter(reg, 'ocimirror_blob_bytes_served_total', 'Blob bytes sent to clients, by source: cache (stored), upstream (streamed from a fill) or replica (streamed from another replica\'s fill)', ['source'], (c) => {
    c.inc({ source: 'cache' }, stats().bytesFromCache); c.inc({ source: 'upstream' }, stats().bytesFromUpstream);
    if (stats().bytesFromReplicas > 0) c.inc({ source: 'replica' }, stats().bytesFromReplicas);
  });
  mirrorCounter(reg, 'ocimirror_blob_redirects_total', 'Warm blob GETs answered with a 307 to the object store (cache.store.redirect)', [], (c) => c.inc(stats().redirects));
  mirrorCounter(reg, 'ocimirror_cache_evictions_total', 'Blobs, manifests and tag mappings evicted by cache.maxSize or cache.maxEntries', [], (c) => c.inc(stats().evictions));
  mirrorCounter(reg, 'ocimirror_cache_evicted_bytes_total', 'Bytes evicted by the size cap', [], (c) => c.inc(stats().evictedBytes));
  mirrorCounter(reg, 'ocimirror_cache_fills_started_total', 'Upstream blob fills started', [], (c) => c.inc(stats().fillsStarted));
  mirrorCounter(reg, 'ocimirror_cache_fills_failed_total', 'Upstream blob fills that failed (nothing cached)', [], (c) => c.inc(stats().fillsFailed));
  mirrorCounter(reg, 'ocimirror_cache_fills_cancelled_total', 'Blob fills cancelled when their last client left past cache.maxDetachedFills', [], (c) => c.inc(stats().fillsCancelled));
  mirrorCounter(reg, 'ocimirror_cache_blobs_uncached_total', 'Blob GETs streamed through uncached because cache.maxFills fills were running', [], (c) => c.inc(stats().blobsUncached));
  mirrorCounter(reg, 'ocimirror_cache_stale_served_total', 'Tag requests answered with the last known manifest, by reason: error (every upstream failed), notfound (staleIfNotFound), ratelimit', ['reason'], (c) => {
    for (const [reason, n] of Object.entries(stats().staleServed)) c.inc({ reason }, n);
  });
  mirrorCounter(reg, 'ocimirror_cache_negative_hits_total', 'Tag requests answered 404 from the negative cache (negativeTtl) without asking upstream', [], (c) => c.inc(stats().negativeHits));
  mirrorCounter(reg, 'ocimirror_cache_write_failures_total', 'Manifests and tag mappings answered from upstream but not stored (disk full, read-only, I/O error), by kind', ['kind'], (c) => {
    c.inc({ kind: 'manifest' }, stats().writeFailures.manifest); c.inc({ kind: 'tag' }, stats().writeFailures.tag);
  });
  mirrorGauge(reg, 'ocimirror_cache_fills_in_progress', 'Blob fills currently running', () => src.cache.fillsInProgress);
  mirrorGauge(reg, 'ocimirror_cache_size_bytes', 'Bytes held in the cache (running fills count their size)', () => src.cache.index.bytes);
  mirrorGauge(reg, 'ocimirror_cache_entries', 'Blobs, manifests and tag mappings held in the cache', () => src.cache.index.entries);
  mirrorGauge(reg, 'ocimirror_cache_max_size_bytes', 'cache.maxSize', () => src.cache.index.maxSize);
  mirrorGauge(reg, 'ocimirror_cache_memory_bytes', 'Bytes of small manifests and blobs also held in memory (cache.memorySize)', () => src.memoryBytes?.() ?? 0);
  mirrorGauge(reg, 'ocimirror_http_requests_waiting', 'Registry requests read and waiting for their turn (above zero: the process is saturated)', () => src.waitingTurn?.() ?? 0);

  // Joined fills and cached manifests hand several requests the same attempts array: count each upstream attempt once.
  const counted = new WeakSet<readonly Attempt[]>();
  // A request that failed as a whole carries its attempts on the error (AllEndpointsFailed), not in req.ctx.
  const failedAttempts = new WeakMap<FastifyRequest, readonly Attempt[]>();
  const observe = (req: FastifyRequest, reply: FastifyReply): void => {
    const route = routeOf(req);
    const registry = req.ctx?.registry ? (src.registryLabel?.(req.ctx.registry) ?? req.ctx.registry) : '';
    requests.inc({ route, method: req.method, status: String(reply.statusCode), registry });
    requestSeconds.observe({ route }, reply.elapsedTime / 1000);
    const attempts = req.ctx?.attempts ?? failedAttempts.get(req);
    if (!attempts || counted.has(attempts)) return;
    counted.add(attempts);
    for (const a of attempts) {
      if (a.skipped) continue;
      const endpoint = src.endpointLabel?.(a.endpoint) ?? a.endpoint;
      upstreamRequests.inc({ endpoint, status: a.error !== undefined ? 'error' : String(a.status) });
      upstreamSeconds.observe({ endpoint }, a.ms / 1000);
      const reason = failureReason(a);
      if (reason) upstreamFailures.inc({ endpoint, reason });
    }
  };

  return {
    registry,
    async counts() {
      const endpoints: Counts = new Map();
      const registries: Counts = new Map();
      const add = (m: Counts, key: string, field: 'requests' | 'failures', n: number) => {
        const c = m.get(key) ?? { requests: 0, failures: 0 };
        c[field] += n;
        m.set(key, c);
      };
      for (const v of (await upstreamRequests.get()).values) add(endpoints, String(v.labels.endpoint), 'requests', v.value);
      for (const v of (await upstreamFailures.get()).values) add(endpoints, String(v.labels.endpoint), 'failures', v.value);
      for (const v of (await requests.get()).values) {
        if (!v.labels.registry) continue;
        add(registries, String(v.labels.registry), 'requests', v.value);
        if (Number(v.labels.status) >= 500) add(registries, String(v.labels.registry), 'failures', v.value);
      }
      return { endpoints, registries };
    },
    plugin(app) {
      app.addHook('onError', async (req, _reply, error) => {
        const cause = (error as { cause?: unknown }).cause;
        if (cause instanceof AllEndpointsFailed) failedAttempts.set(req, cause.attempts);
      });
      app.addHook('onResponse', async (req, reply) => observe(req, reply));
      app.get(METRICS_PATH, async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    },
  };
}

/** A bounded route label: the API resource, or the fixed path of a non-API route. */
export function routeOf(req: FastifyRequest): string {
  const path = req.url.split('?', 1)[0] ?? '';
  const api = /^\/v2\/.+\/(manifests|blobs|tags|referrers)\/[^/]+$/.exec(path);
  if (api) return api[1] as string;
  if (path === '/v2/' || path === '/v2') return 'base';
  // routeOptions.url is the registered pattern (never the raw URL), or undefined for a 404.
  return req.routeOptions?.url ?? 'unmatched';
}

/** Why an attempt counts against its endpoint; 404 is a normal fall-through, not a failure. */
export function failureReason(a: Attempt): string | undefined {
  if (a.error !== undefined) return 'transport';
  const s = a.status ?? 0;
  if (s >= 500) return '5xx';
  if (s === 429) return '429';
  if (s === 401 || s === 403) return 'auth';
  return undefined;
}

type Reg = { registers: Registry[] };

/** A counter whose value is another object's running total, copied on scrape. */
function mirrorCounter(reg: Reg, name: string, help: string, labelNames: string[], fill: (c: Counter) => void): void {
  new Counter({ ...reg, name, help, labelNames, collect() { this.reset(); fill(this); } });
}

function mirrorGauge(reg: Reg, name: string, help: string, read: () => number): void {
  new Gauge({ ...reg, name, help, collect() { this.set(read()); } });
}

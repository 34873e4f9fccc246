// Composition root: config → logger, upstreams, services, app → listening proxy.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { policiesOf } from '../config/policies.js';
import type { Config } from '../config/schema.js';
import type { NetworkHooks } from '../upstream/connector.js';
import { Upstreams } from '../upstream/upstreams.js';
import { ProxyService } from '../upstream/service.js';
import { UpstreamBlobSource } from '../upstream/blob-source.js';
import { openCacheStores } from '../cache/open-stores.js';
import { CachingService } from '../cache/service.js';
import { buildApp } from './app.js';
import { authPlugin } from './auth.js';
import { createLogger } from './logger.js';
import { createMetrics, type ProxyMetrics } from './metrics.js';
import { Turns } from './turns.js';
import type { ClusterParts } from './cluster.js';
import { peerFillsPlugin } from './peer-fills.js';
import { healthPlugin, type Check } from './health.js';
import { startAdminSocket } from './admin-socket.js';
import { RecentPulls, type StatusSource } from './status-data.js';
import { statusPlugin } from './status-page.js';

export interface RunningProxy {
  app: FastifyInstance;
  url: string;
  port: number;
  upstreams: Upstreams;
  service: CachingService;
  logger: Logger;
  /** Present with `cluster:` in the config. */
  cluster?: ClusterParts;
  /**
   * Stops accepting at once, lets in-flight responses run for up to `graceMs` (0 by default; `endGrace` cuts it
   * short), then aborts running fills (their temp files are removed) and closes what is still open.
   */
  close(opts?: { graceMs?: number; endGrace?: AbortSignal }): Promise<{ fillsAborted: number; connectionsCut: number }>;
}

/** Resolves when `closing` settles, `graceMs` passed, or `endGrace` aborted, whichever comes first. */
async function graceOver(closing: Promise<unknown>, graceMs: number, endGrace?: AbortSignal): Promise<void> {
  if (graceMs <= 0 || endGrace?.aborted) return;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const over = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
    onAbort = resolve;
    endGrace?.addEventListener('abort', onAbort, { once: true });
  });
  await Promise.race([closing.catch(() => undefined), over]);
  clearTimeout(timer);
  if (onAbort) endGrace?.removeEventListener('abort', onAbort);
}

export interface StartOptions {
  logger?: Logger;
  /** The clock tag freshness and rate-limit windows are judged by (tests move it instead of sleeping). */
  now?: () => number;
  /** Tests: their own resolver, and a guard that keeps every upstream connection on loopback. */
  network?: NetworkHooks;
}

export async function startProxy(config: Config, opts: StartOptions = {}): Promise<RunningProxy> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const via = `1.1 ocimirror-${randomBytes(6).toString('hex')}`;
  const policies = policiesOf(config);
  const upstreams = new Upstreams(config, logger, via, { events: opts.now ? { now: opts.now } : {}, ...(opts.network ? { network: opts.network } : {}) });
  const proxy = new ProxyService(config.upstream.failureStatus);
  const blobSource = new UpstreamBlobSource(config.upstream.failureStatus);
  const { stores, summary: storeSummary, close: closeStore, unreachable: storeUnreachable, memory } = await openCacheStores(config, logger);
  // Loaded only for a cluster: the Redis client is resident memory a single replica never needs.
  const cluster = config.cluster ? await (await import('./cluster.js')).openCluster({ ...config, cluster: config.cluster }, logger) : undefined;
  const service = new CachingService(stores, proxy, blobSource, config, logger, { ...(opts.now ? { now: opts.now } : {}), ...(cluster ? { index: cluster.index, shared: cluster.fills } : {}) });
  const cacheState = await service.init();
  logger.info({ dir: config.cache.dir, store: storeSummary, ...cacheState, maxSize: config.cache.maxSize }, 'cache ready');
  const turns = new Turns();
  const metrics = createMetrics({
    cache: service,
    endpoints: () => upstreams.allEndpoints().map((e) => ({ name: e.client.name, isDown: e.health.isDown })),
    rateLimits: () => upstreams.rateLimits(),
    registryLabel: (r) => (upstreams.isConfigured(r) ? r : '*'),
    endpointLabel: (e) => (upstreams.isConfiguredEndpoint(e) ? e : '*'),
    memoryBytes: () => memory?.bytes ?? 0,
    waitingTurn: () => turns.waiting,
  });
  const health = healthPlugin({
    configSource: config.source,
    cacheDir: config.cache.dir,
    mirrors: () => upstreams.configured().flatMap((registry) => {
      const mirror = upstreams.resolve(registry);
      return mirror ? [{ registry, endpoints: mirror.endpoints.map((e) => ({ name: e.client.name, isDown: e.health.isDown })) }] : [];
    }),
    more: async () => {
      const checks: Record<string, Check> = {};
      // Misses still pass through to upstream while the object store is away: degraded, not unready.
      if (storeUnreachable) {
        const why = await storeUnreachable();
        checks.store = why ? { ok: true, degraded: true, detail: why } : { ok: true, detail: String(storeSummary.type) };
      }
      if (cluster) checks.cluster = cluster.readiness();
      return checks;
    },
  });
  const pulls = new RecentPulls(50);
  const status = statusPlugin(statusSource(config, upstreams, service, metrics, pulls), pulls);
  const https = config.server.tls ? { cert: readFileSync(config.server.tls.cert_file), key: readFileSync(config.server.tls.key_file) } : undefined;
  const app = buildApp({
    service,
    logger,
    via,
    routing: { defaultRegistry: config.defaultRegistry, resolve: (r) => upstreams.resolve(r), access: (r, repo) => policies.access(r, repo) },
    // Auth first among the plugins: an unauthenticated request is answered before anything else looks at it.
    plugins: [
      ...(config.server.auth ? [authPlugin(config.server.auth)] : []), metrics.plugin, health, status,
      ...(config.cluster ? [peerFillsPlugin(service, config.cluster.secret)] : []),
    ],
    limits: config.server.limits,
    turns,
    ...(https ? { https } : {}),
  });
  await app.listen({ host: config.server.listen.host, port: config.server.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.server.listen.port;
  const host = config.server.listen.host.includes(':') ? `[${config.server.listen.host}]` : config.server.listen.host;
  const url = `${https ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  const admin = await startAdminSocket(config.cache.dir, service, { tagTtlMs: config.cache.tagTtlMs, now: opts.now ?? Date.now }, logger);
  logger.info({ url, mirrors: upstreams.configured(), defaultRegistry: config.defaultRegistry }, 'ocimirror listening');
  return {
    app, url, port, upstreams, logger, service, ...(cluster ? { cluster } : {}),
    async close({ graceMs = 0, endGrace } = {}) {
      const closing = app.close();
      await graceOver(closing, graceMs, endGrace);
      // Cancelling fills ends the clients following them; responses from the cache still running are cut.
      const fillsAborted = service.fillsInProgress;
      const connectionsCut = await new Promise<number>((resolve) => app.server.getConnections((_err, n) => resolve(n ?? 0)));
      await Promise.all([service.close(), admin?.close()]);
      app.server.closeAllConnections();
      await closing;
      await upstreams.close();
      await cluster?.close();
      closeStore();
      return { fillsAborted, connectionsCut };
    },
  };
}

/** The status page's view of this server: configured registries, cache, fills and pulls, read when it asks. */
function statusSource(config: Config, upstreams: Upstreams, service: CachingService, metrics: ProxyMetrics, pulls: RecentPulls): StatusSource {
  return {
    async registries() {
      const counts = await metrics.counts();
      const none = { requests: 0, failures: 0 };
      return upstreams.configured().flatMap((registry) => {
        const mirror = upstreams.resolve(registry);
        if (!mirror) return [];
        const endpoints = mirror.endpoints.map(({ client, health }) => ({
          name: client.name, state: health.state, ...counts.endpoints.get(client.name) ?? none,
          ...(health.nextProbeAt !== undefined ? { nextProbeAt: health.nextProbeAt } : {}),
          ...(health.lastError !== undefined ? { lastError: health.lastError } : {}),
        }));
        return [{ registry, endpoints, ...counts.registries.get(registry) ?? none }];
      });
    },
    cache() {
      const { stats, index } = service;
      return {
        bytes: index.bytes, maxSize: config.cache.maxSize, entries: index.entries,
        hits: stats.hits.blob + stats.hits.manifest, misses: stats.misses.blob + stats.misses.manifest,
        bytesFromCache: stats.bytesFromCache, bytesFromUpstream: stats.bytesFromUpstream,
      };
    },
    fills: () => service.fills(),
    recentPulls: () => pulls.list(),
    rateLimits: () => upstreams.rateLimits(),
  };
}

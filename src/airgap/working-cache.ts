// The cache as a CLI command uses it, beside (or without) a running server: the configured stores, plus a
// CachingService over the configured upstreams for what is missing — without listening, without crash recovery
// (the server's temp files may be in use) and without eviction (the server owns cache.maxSize; it learns what
// this process stored on first use, or at its next start).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { policiesOf, type Access } from '../config/policies.js';
import type { Config } from '../config/schema.js';
import { openCacheStores } from '../cache/open-stores.js';
import { CachingService, type CacheStores } from '../cache/service.js';
import { UpstreamBlobSource } from '../upstream/blob-source.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';
import { ProxyService } from '../upstream/service.js';
import { Upstreams } from '../upstream/upstreams.js';

export interface WorkingCache {
  stores: CacheStores;
  service: CachingService;
  /** The mirror entry for a registry, as the server resolves it; undefined when the configuration has none. */
  mirror(registry: string): MirrorUpstream | undefined;
  /** `policies` deny and `allowRepositories`, as the server's route applies them. */
  access(registry: string, repo: string): Access;
  close(): Promise<void>;
}

export async function openWorkingCache(config: Config, logger: Logger): Promise<WorkingCache> {
  const opened = await openCacheStores(config, logger, { cli: true });
  const upstreams = new Upstreams(config, logger, `1.1 ocimirror-cli-${randomBytes(6).toString('hex')}`);
  const unbounded: Config = { ...config, cache: { ...config.cache, maxSize: Number.MAX_SAFE_INTEGER } };
  const policies = policiesOf(config);
  const service = new CachingService(opened.stores, new ProxyService(config.upstream.failureStatus), new UpstreamBlobSource(config.upstream.failureStatus), unbounded, logger);
  return {
    stores: opened.stores,
    service,
    mirror: (registry) => upstreams.resolve(registry),
    access: (registry, repo) => policies.access(registry, repo),
    async close() {
      await service.close();
      await upstreams.close();
      opened.close();
    },
  };
}

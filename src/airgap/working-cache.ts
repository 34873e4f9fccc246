// The cache as a CLI command uses it, beside (or without) a running server: the configured stores, plus a
// CachingService over the configured upstreams for what is missing — without listening, without crash recovery
// (the server's temp files may be in use) and without eviction (the server owns cache.maxSize; it learns what
// this process stored on first use, or at its next start).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { openCacheStores } from '../cache/open-stores.js';
import { CachingService, type CacheStores } from '../cache/service.js';
import { ProxyService } from '../upstream/service.js';
import { Upstreams } from '../upstream/upstreams.js';

export interface WorkingCache {
  stores: CacheStores;
  service: CachingService;
  close(): Promise<void>;
}

export async function openWorkingCache(config: Config, logger: Logger): Promise<WorkingCache> {
  const stores = await openCacheStores(config, logger);
  const upstreams = new Upstreams(config, logger, `1.1 ocimirror-cli-${randomBytes(6).toString('hex')}`);
  const proxy = new ProxyService(upstreams, config.upstream.failureStatus);
  const unbounded: Config = { ...config, cache: { ...config.cache, maxSize: Number.MAX_SAFE_INTEGER } };
  const service = new CachingService(stores, proxy, unbounded, logger);
  return {
    stores,
    service,
    async close() {
      await service.close();
      await upstreams.close();
    },
  };
}

// The caching RegistryService: wraps the proxy service (the remote side) with the blob store, fills, the
// manifest/tag cache and the LRU index. Tags lists and referrers pass through: they change too often to cache.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { BlobRequest, BlobResult, ListRequest, ListResult, ManifestRequest, ManifestResult, RegistryService } from '../oci/service.js';
import type { ProxyService } from '../upstream/service.js';
import { BlobCache } from './blob-cache.js';
import type { BlobStore } from './blob-store.js';
import { CacheIndex } from './index.js';
import { ManifestCache } from './manifest-cache.js';
import { CacheStats } from './stats.js';

export class CachingService implements RegistryService {
  readonly stats = new CacheStats();
  readonly index: CacheIndex;
  private readonly blobs: BlobCache;
  private readonly manifests: ManifestCache;

  constructor(readonly store: BlobStore, private readonly upstream: ProxyService, config: Config, log: Logger) {
    this.index = new CacheIndex(store, config.cache.maxSize, log, {
      onEvict: (_digest, size) => { this.stats.evictions++; this.stats.evictedBytes += size; },
    });
    const opts = { fillTimeoutMs: config.cache.fillTimeoutMs, failureStatus: config.upstream.failureStatus };
    this.blobs = new BlobCache(store, this.index, upstream, this.stats, log, opts);
    this.manifests = new ManifestCache(join(config.cache.dir), store, this.index, upstream, this.stats, log, config.cache.tagTtlMs);
  }

  /** Removes crash leftovers and rebuilds the index from disk. */
  async init(): Promise<{ recovered: number; entries: number; bytes: number }> {
    const recovered = await this.store.recover();
    const { entries, bytes } = await this.index.load();
    return { recovered, entries, bytes };
  }

  close(): Promise<void> {
    return this.blobs.close();
  }

  get fillsInProgress(): number {
    return this.blobs.fillsInProgress;
  }

  manifest(req: ManifestRequest): Promise<ManifestResult> {
    return this.manifests.manifest(req);
  }

  blob(req: BlobRequest): Promise<BlobResult> {
    return this.blobs.blob(req);
  }

  tags(req: ListRequest): Promise<ListResult> {
    return this.upstream.tags(req);
  }

  referrers(req: ListRequest & { digest: string }): Promise<ListResult> {
    return this.upstream.referrers(req);
  }
}

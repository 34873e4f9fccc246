// The caching RegistryService: wraps the remote side (the proxy service, and the blob source for fills) with the
// blob store, fills, the manifest/tag cache and the LRU index. Tags lists and referrers pass through: they change
// too often to cache.
import type { Logger } from 'pino';
import { policiesOf } from '../config/policies.js';
import type { Config } from '../config/schema.js';
import type { ByteRange } from '../oci/range.js';
import type { BlobRequest, BlobResult, ListRequest, ListResult, ManifestRequest, ManifestResult, RegistryService } from '../oci/service.js';
import type { BlobSource } from '../upstream/blob-source.js';
import type { MirrorUpstream } from '../upstream/fallthrough.js';
import type { ProxyService } from '../upstream/service.js';
import { BlobCache } from './blob-cache.js';
import type { BlobStore } from './blob-store.js';
import { CacheIndex, type EntryIndex, type EntryKind, type EntryStore, type IndexedEntry, type IndexEvents } from './lru-index.js';
import { ManifestCache } from './manifest-cache.js';
import type { SharedFills } from './shared-fills.js';
import type { ManifestStore } from './manifest-store.js';
import { CacheStats } from './stats.js';
import { parseTagId, type TagStore } from './tag-store.js';

/** Where each kind of cached entry lives. */
export interface CacheStores {
  blobs: BlobStore;
  manifests: ManifestStore;
  tags: TagStore;
}

/** Builds the index over the stores (this process's LRU by default; a cluster's shared one). */
export type IndexFactory = (stores: Readonly<Record<EntryKind, EntryStore>>, sources: () => AsyncIterable<IndexedEntry>[], events: IndexEvents) => EntryIndex;

export interface CachingOptions {
  /** The clock tag freshness is judged by. */
  now?: () => number;
  index?: IndexFactory;
  /** Cross-replica single-flight of fills (a cluster). */
  shared?: SharedFills;
}

export class CachingService implements RegistryService<MirrorUpstream> {
  readonly stats = new CacheStats();
  readonly index: EntryIndex;
  private readonly blobs: BlobCache;
  private readonly manifests: ManifestCache;

  constructor(readonly stores: CacheStores, private readonly upstream: ProxyService, source: BlobSource, config: Config, log: Logger, opts: CachingOptions = {}) {
    const { blobs, manifests, tags } = stores;
    const entryStores: Record<EntryKind, EntryStore> = {
      blob: blobs,
      manifest: manifests,
      tag: {
        delete: async (id) => { const ref = parseTagId(id); if (ref) await tags.delete(ref); },
        touch: async () => undefined,
      },
    };
    const events: IndexEvents = { onEvict: (_kind, _id, size) => { this.stats.evictions++; this.stats.evictedBytes += size; } };
    const limits = { maxSize: config.cache.maxSize, maxEntries: config.cache.maxEntries };
    this.index = opts.index
      ? opts.index(entryStores, () => this.listings(), events)
      : new CacheIndex(entryStores, limits, log, { ...events, ...(opts.now ? { now: opts.now } : {}) });
    this.blobs = new BlobCache(blobs, this.index, upstream, source, this.stats, log, { fillTimeoutMs: config.cache.fillTimeoutMs, maxFills: config.cache.maxFills, maxDetachedFills: config.cache.maxDetachedFills, ...(opts.shared ? { shared: opts.shared } : {}), redirect: config.cache.store.type === 's3' && config.cache.store.redirect });
    this.manifests = new ManifestCache({
      manifests, tags, index: this.index, upstream, stats: this.stats, log, policies: policiesOf(config), now: opts.now ?? Date.now,
    });
  }

  /** Removes crash leftovers and rebuilds the index from every store. */
  async init(): Promise<{ recovered: number; entries: number; bytes: number }> {
    const recovered = await this.stores.blobs.recover();
    const { entries, bytes } = await this.index.load(this.listings());
    return { recovered, entries, bytes };
  }

  /** Fresh listings of every store, as index entries. */
  private listings(): AsyncIterable<IndexedEntry>[] {
    return [blobEntries(this.stores.blobs), this.stores.manifests.list(), tagEntries(this.stores.tags)];
  }

  async close(): Promise<void> {
    // The index first (a shared one stops its timers; this process's writes its pending access times).
    await this.index.close?.();
    await this.blobs.close();
  }

  /** Clients waiting for a manifest from upstream. */
  get manifestsWaiting(): number {
    return this.manifests.waiting;
  }

  get fillsInProgress(): number {
    return this.blobs.fillsInProgress;
  }

  /** Running fills, for the status page. */
  fills(): ReturnType<BlobCache['fillProgress']> {
    return this.blobs.fillProgress();
  }

  manifest(req: ManifestRequest<MirrorUpstream>): Promise<ManifestResult> {
    return this.manifests.manifest(req);
  }

  /** A fill of `digest` running here, for another replica of the cluster to follow; undefined when none runs. */
  followFill(digest: string, range: ByteRange | undefined): Promise<BlobResult | undefined> {
    return this.blobs.followLocal(digest, range);
  }

  blob(req: BlobRequest<MirrorUpstream>): Promise<BlobResult> {
    return this.blobs.blob(req);
  }

  tags(req: ListRequest<MirrorUpstream>): Promise<ListResult> {
    return this.upstream.tags(req);
  }

  referrers(req: ListRequest<MirrorUpstream> & { digest: string }): Promise<ListResult> {
    return this.upstream.referrers(req);
  }
}

async function* blobEntries(store: BlobStore): AsyncIterable<IndexedEntry> {
  for await (const b of store.list()) yield { kind: 'blob', id: b.digest, size: b.size, accessedAt: b.accessedAt };
}

async function* tagEntries(store: TagStore): AsyncIterable<IndexedEntry> {
  for await (const t of store.list()) yield t.entry;
}

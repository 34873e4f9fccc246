// Counters the cache keeps for /metrics and the benchmark; plain numbers, read on scrape.

export type StaleReason = 'error' | 'notfound' | 'ratelimit';
export class CacheStats {
  hits = { blob: 0, manifest: 0 };
  misses = { blob: 0, manifest: 0 };
  bytesFromCache = 0;
  bytesFromUpstream = 0;
  /** Bytes streamed from another replica's fill (a cluster's cross-replica single-flight). */
  bytesFromReplicas = 0;
  /** Warm blob GETs answered with a 307 to the object store (cache.store.redirect). */
  redirects = 0;
  evictions = 0;
  evictedBytes = 0;
  fillsStarted = 0;
  fillsFailed = 0;
  /** Fills cancelled because their last client left while cache.maxDetachedFills others ran without one. */
  fillsCancelled = 0;
  /** Blob GETs streamed from upstream without caching because cache.maxFills fills were running. */
  blobsUncached = 0;
  /** Tags answered with the last known manifest, by why upstream was not (or could not be) asked. */
  staleServed: Record<StaleReason, number> = { error: 0, notfound: 0, ratelimit: 0 };
  /** Tag requests answered 404 from the negative cache (negativeTtl), without asking upstream. */
  negativeHits = 0;
  /** Manifests and tag mappings answered from upstream but not stored (disk full, read-only, I/O errors). */
  writeFailures = { manifest: 0, tag: 0 };
}

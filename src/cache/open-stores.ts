// The one place that turns the configuration into the cache's stores, one per kind of entry: the filesystem under
// cache.dir, or one S3 bucket for blobs, manifests and tag mappings alike (spill files of running fills stay
// under cache.dir/tmp). The server and the CLI commands that work on the cache (export, import, cache
// list/rm/prune) all open them here, so every store family is wired once.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { FsBlobStore } from './fs-store.js';
import { FsManifestStore } from './fs-manifest-store.js';
import { FsTagStore } from './fs-tag-store.js';
import { MemoryBlobStore, MemoryManifestStore, MemoryTier } from './memory-store.js';
import type { CacheStores } from './service.js';

/** An upload older than the longest fill plus this is certainly abandoned (and survives some clock skew). */
const STALE_UPLOAD_MARGIN_MS = 15 * 60_000;

export interface OpenedStores {
  stores: CacheStores;
  /** What to log about them (never a secret). */
  summary: Record<string, unknown>;
  /** Closes the stores' connections (shutdown). */
  close(): void;
  /** Small entries kept in memory in front of the stores (cache.memorySize), when there is such a tier. */
  memory?: MemoryTier;
  /** For a remote store: undefined when it answers, else why not. */
  unreachable?: () => Promise<string | undefined>;
}

/** `cli`: a command-line export or import (see FsBlobStore's inlineHashing). */
export async function openCacheStores(config: Config, logger: Logger, opts: { cli?: boolean } = {}): Promise<OpenedStores> {
  const s = config.cache.store;
  if (s.type === 'fs') {
    const blobs = new FsBlobStore(config.cache.dir, { inlineHashing: opts.cli ?? false });
    const manifests = new FsManifestStore(config.cache.dir, logger);
    const tags = new FsTagStore(config.cache.dir, logger);
    await Promise.all([blobs.init(), manifests.init(), tags.init()]);
    const summary = { type: 'fs', dir: config.cache.dir, memorySize: config.cache.memorySize };
    // A command runs once over each entry: only the server gains from keeping small ones in memory.
    if (opts.cli || config.cache.memorySize === 0) return { stores: { blobs, manifests, tags }, summary, close: () => undefined };
    const memory = new MemoryTier(config.cache.memorySize);
    return { stores: { blobs: new MemoryBlobStore(blobs, memory), manifests: new MemoryManifestStore(manifests, memory), tags }, summary, memory, close: () => undefined };
  }
  // Loaded only for an S3 store: the AWS SDK is resident memory a filesystem cache never needs.
  const [{ createS3Client }, { S3ManifestStore }, { S3BlobStore }, { S3TagStore }] = await Promise.all([
    import('./s3-client.js'), import('./s3-manifest-store.js'), import('./s3-store.js'), import('./s3-tag-store.js'),
  ]);
  const client = createS3Client(s);
  const where = { client, bucket: s.bucket, prefix: s.prefix };
  const blobs = new S3BlobStore({ ...where, spillDir: join(config.cache.dir, 'tmp'), staleUploadMs: config.cache.fillTimeoutMs + STALE_UPLOAD_MARGIN_MS });
  try {
    await blobs.init();
  } catch (err) {
    client.destroy();
    throw err;
  }
  return {
    stores: { blobs, manifests: new S3ManifestStore({ ...where, log: logger }), tags: new S3TagStore({ ...where, log: logger }) },
    summary: { type: 's3', endpoint: s.endpoint ?? 'AWS', bucket: s.bucket, prefix: blobs.prefix },
    close: () => blobs.close(),
    unreachable: () => blobs.unreachable(),
  };
}

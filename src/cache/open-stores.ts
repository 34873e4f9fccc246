// The one place that turns the configuration into the cache's stores: the server and the CLI commands that work
// on the cache (export, import, cache list/rm/prune) all open them here. Blobs live where cache.store says
// (open-store.ts: the filesystem or S3); manifests and tag mappings under cache.dir.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { FsManifestStore } from './fs-manifest-store.js';
import { FsTagStore } from './fs-tag-store.js';
import { openBlobStore } from './open-store.js';
import type { CacheStores } from './service.js';

export interface OpenedStores {
  stores: CacheStores;
  /** What to log about the blob store (never a secret). */
  summary: Record<string, unknown>;
  close(): void;
}

export async function openCacheStores(config: Config, logger: Logger): Promise<OpenedStores> {
  const { store: blobs, summary, close } = await openBlobStore(config);
  const manifests = new FsManifestStore(config.cache.dir, logger);
  const tags = new FsTagStore(config.cache.dir, logger);
  await Promise.all([manifests.init(), tags.init()]);
  return { stores: { blobs, manifests, tags }, summary, close };
}

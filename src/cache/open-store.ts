// Picks the blob store cache.store names: the filesystem under cache.dir, or an S3 bucket (with its spill files
// under cache.dir/tmp).
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-store.js';
import { createS3Client } from './s3-client.js';
import { S3BlobStore } from './s3-store.js';

/** An upload older than the longest fill plus this is certainly abandoned (and survives some clock skew). */
const STALE_UPLOAD_MARGIN_MS = 15 * 60_000;

export interface OpenedStore {
  store: BlobStore;
  /** What to log about it (never a secret). */
  summary: Record<string, unknown>;
  close(): void;
}

export async function openBlobStore(config: Config): Promise<OpenedStore> {
  const s = config.cache.store;
  if (s.type === 'fs') {
    const store = new FsBlobStore(config.cache.dir);
    await store.init();
    return { store, summary: { type: 'fs', dir: config.cache.dir }, close: () => undefined };
  }
  const client = createS3Client(s);
  const store = new S3BlobStore({
    client, bucket: s.bucket, prefix: s.prefix, spillDir: join(config.cache.dir, 'tmp'),
    staleUploadMs: config.cache.fillTimeoutMs + STALE_UPLOAD_MARGIN_MS,
  });
  try {
    await store.init();
  } catch (err) {
    client.destroy();
    throw err;
  }
  return { store, summary: { type: 's3', endpoint: s.endpoint ?? 'AWS', bucket: s.bucket, prefix: store.prefix }, close: () => store.close() };
}

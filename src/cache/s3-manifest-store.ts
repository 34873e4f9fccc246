// Manifests on S3: <prefix>manifests/<alg>/<hex>, the exact bytes as the object and the media type as its
// Content-Type, so one HEAD answers a manifest HEAD (type and size) and one PUT makes both visible together.
// Sizes are checked before a body is read.
import {
  CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand,
  type GetObjectCommandOutput, type HeadObjectCommandOutput, type S3Client,
} from '@aws-sdk/client-s3';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { MAX_MANIFEST_BYTES } from '../oci/mediatypes.js';
import type { IndexedEntry } from './lru-index.js';
import { checkManifest, isMediaType, type ManifestHead, type ManifestStore, type StoredManifest } from './manifest-store.js';
import { blobKey, digestOfKey, isNotFound, listObjects, normalizePrefix, sendRead, unavailable } from './s3-client.js';

export interface S3ManifestStoreOptions {
  client: S3Client;
  bucket: string;
  prefix: string;
  log: Logger;
}

/** touch() rewrites an object's metadata (a copy onto itself): at most this often per manifest per process. */
const TOUCH_EVERY_MS = 60_000;

export class S3ManifestStore implements ManifestStore {
  readonly prefix: string;
  /** Media types this process has seen, so touch() needs no HEAD before its copy. */
  private readonly types = new LRUCache<string, string>({ max: 10_000 });
  private readonly touched = new LRUCache<string, number>({ max: 10_000 });

  constructor(private readonly opts: S3ManifestStoreOptions) {
    this.prefix = normalizePrefix(opts.prefix);
  }

  key(digest: string): string {
    return blobKey(this.prefix, digest, 'manifests');
  }

  async head(digest: string): Promise<ManifestHead | undefined> {
    const Key = this.key(digest);
    let res: HeadObjectCommandOutput;
    try {
      res = await sendRead('look up a manifest', (abortSignal) => this.opts.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key }), { abortSignal }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return this.checked(digest, res.ContentType, res.ContentLength);
  }

  async get(digest: string): Promise<StoredManifest | undefined> {
    const Key = this.key(digest);
    let res: GetObjectCommandOutput;
    try {
      res = await sendRead('read a manifest', (abortSignal) => this.opts.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key }), { abortSignal }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const head = await this.checked(digest, res.ContentType, res.ContentLength);
    if (!head) {
      (res.Body as { destroy?: () => void } | undefined)?.destroy?.();
      return undefined;
    }
    const body = Buffer.from(await res.Body!.transformToByteArray());
    if (body.length !== head.size) return undefined;
    return { ...head, body };
  }

  /** Type and size as stored, or undefined (and the object removed) when it cannot be a manifest we wrote. */
  private async checked(digest: string, type: string | undefined, size: number | undefined): Promise<ManifestHead | undefined> {
    const why = !type || !isMediaType(type) ? `no media type (${JSON.stringify(type ?? '')})`
      : size === undefined || size > MAX_MANIFEST_BYTES ? `object of ${size ?? 'unknown'} bytes is larger than any manifest` : undefined;
    if (why) {
      this.opts.log.error({ digest, key: this.key(digest), why }, 'removing a damaged manifest from the cache');
      await this.delete(digest).catch(() => undefined);
      return undefined;
    }
    this.types.set(digest, type!);
    return { digest, mediaType: type!, size: size! };
  }

  async put(digest: string, mediaType: string, body: Buffer): Promise<ManifestHead> {
    const Key = this.key(digest);
    checkManifest(digest, mediaType, body);
    try {
      await this.opts.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key, Body: body, ContentLength: body.length, ContentType: mediaType }));
    } catch (err) {
      throw unavailable(err, 'store a manifest');
    }
    this.types.set(digest, mediaType);
    return { digest, mediaType, size: body.length };
  }

  async delete(digest: string): Promise<void> {
    const Key = this.key(digest);
    this.types.delete(digest);
    await this.opts.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key }));
  }

  /**
   * S3 changes an object's time only by writing it: a copy onto itself with fresh metadata (cheap for a manifest,
   * at most once a minute per manifest). In a cluster, access times live in Redis instead and this is not called.
   */
  async touch(digest: string): Promise<void> {
    const Key = this.key(digest);
    const now = Date.now();
    if (now - (this.touched.get(digest) ?? -Infinity) < TOUCH_EVERY_MS) return;
    this.touched.set(digest, now);
    try {
      const type = this.types.get(digest) ?? (await this.head(digest))?.mediaType;
      if (!type) return;
      await this.opts.client.send(new CopyObjectCommand({
        Bucket: this.opts.bucket, Key, CopySource: `${this.opts.bucket}/${Key}`, MetadataDirective: 'REPLACE', ContentType: type,
        Metadata: { accessed: String(now) },
      }));
    } catch (err) {
      if (!isNotFound(err)) this.opts.log.warn({ digest, err }, 'cannot record a manifest access time');
    }
  }

  async *list(): AsyncIterable<IndexedEntry> {
    for await (const o of listObjects(this.opts.client, this.opts.bucket, `${this.prefix}manifests/`)) {
      const digest = digestOfKey(this.prefix, o.key, 'manifests');
      if (digest) yield { kind: 'manifest', id: digest, size: o.size, accessedAt: o.modified ?? Date.now() };
    }
  }
}

// The S3 store: the same BlobStore as the filesystem one, on any S3 API (AWS, Ceph RGW, MinIO), so several
// replicas can share one cache. Objects are <prefix>blobs/<alg>/<hex>; a writer spills to local disk and streams
// into a multipart upload that is completed only after the digest matched (s3-writer.ts).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand,
  PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { algorithmOf, digestOf } from '../oci/digest.js';
import { isDigest } from '../oci/names.js';
import { DigestMismatchError, type BlobStore, type BlobWriter, type StoredBlob } from './blob-store.js';
import { entriesOf } from './fs-layout.js';
import { blobKey, digestOfKey, isNotFound, listObjects, normalizePrefix, sendRead } from './s3-client.js';
import { S3BlobWriter, UPLOAD_ID_SUFFIX } from './s3-writer.js';
import { Slots } from './slots.js';

export interface S3StoreOptions {
  client: S3Client;
  bucket: string;
  prefix: string;
  /** Local directory for writers' spill files (cache.dir/tmp): only fills in progress live there. */
  spillDir: string;
  /** recover() aborts multipart uploads under the prefix begun longer ago than this: no fill runs that long. */
  staleUploadMs: number;
  /** Multipart part size (S3's minimum is 5 MiB); blobs smaller than this are one PutObject. */
  partSize?: number;
  /** Parts one writer uploads at once. */
  partConcurrency?: number;
  /** Part buffers of all writers together (each partSize bytes): bounds memory however many fills run. */
  maxPartsInFlight?: number;
  now?: () => number;
}

export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_PART_CONCURRENCY = 4;
export const DEFAULT_MAX_PARTS_IN_FLIGHT = 16;

export class S3BlobStore implements BlobStore {
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly slots: Slots;

  constructor(private readonly opts: S3StoreOptions) {
    this.slots = new Slots(opts.maxPartsInFlight ?? DEFAULT_MAX_PARTS_IN_FLIGHT);
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix);
  }

  /** Creates the spill directory and checks that the bucket is there and ours to use. */
  async init(): Promise<void> {
    await mkdir(this.opts.spillDir, { recursive: true });
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const why = status === 404 ? 'it does not exist (create it first)' : status === 403 ? 'access denied' : (err as Error).message;
      throw new Error(`S3 bucket ${JSON.stringify(this.bucket)} is not usable: ${why}`, { cause: err });
    }
  }

  /** Undefined when the bucket answers (within the read deadline), else why not: for /readyz. */
  async unreachable(): Promise<string | undefined> {
    try {
      await sendRead('reach the bucket', (abortSignal) => this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal }), 5_000);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  key(digest: string): string {
    return blobKey(this.prefix, digest);
  }

  async stat(digest: string): Promise<StoredBlob | undefined> {
    const Key = this.key(digest);
    try {
      const head = await sendRead('look up a blob', (abortSignal) => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }), { abortSignal }));
      return { digest, size: head.ContentLength ?? 0, accessedAt: head.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async open(digest: string, range?: { start: number; end: number }): Promise<Readable> {
    const Key = this.key(digest);
    let body: Readable;
    try {
      const res = await sendRead('read a blob', (abortSignal) => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }), { abortSignal }));
      body = res.Body as Readable;
    } catch (err) {
      // Callers tell "deleted behind our back" from a failing store by ENOENT, as with the filesystem store.
      if (isNotFound(err)) throw Object.assign(new Error(`blob ${digest} is not in the bucket`, { cause: err }), { code: 'ENOENT' });
      throw err;
    }
    return countingStream(body);
  }

  /** Signed locally (no request to S3): SigV4 query parameters, good for `seconds`. */
  presign(digest: string, seconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(digest) }), { expiresIn: seconds });
  }

  async readAll(digest: string): Promise<Buffer | undefined> {
    const Key = this.key(digest);
    try {
      const res = await sendRead('read a blob', (abortSignal) => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }), { abortSignal }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async put(digest: string, data: Buffer): Promise<StoredBlob> {
    const Key = this.key(digest);
    const actual = digestOf(data, algorithmOf(digest));
    if (actual !== digest) throw new DigestMismatchError(digest, actual, data.length, data.length);
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: data, ContentLength: data.length }));
    return { digest, size: data.length, accessedAt: this.now() };
  }

  async createWriter(digest: string): Promise<BlobWriter> {
    const key = this.key(digest);
    const spillPath = join(this.opts.spillDir, `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}`);
    const handle = await open(spillPath, 'w+');
    return new S3BlobWriter({
      client: this.client, bucket: this.bucket, key, digest, spillPath,
      partSize: this.opts.partSize ?? DEFAULT_PART_SIZE, partConcurrency: this.opts.partConcurrency ?? DEFAULT_PART_CONCURRENCY, slots: this.slots,
    }, handle);
  }

  async delete(digest: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(digest) }));
  }

  /**
   * Nothing is written: S3 cannot change an object's time without rewriting it (a copy onto itself), which would
   * cost a full copy per hit. accessedAt is the object's LastModified (when it was stored); access times shared
   * by the replicas belong in Redis (cluster wiring), not in the bucket.
   */
  async touch(digest: string): Promise<void> {
    this.key(digest);
  }

  async *list(): AsyncIterable<StoredBlob> {
    for await (const o of listObjects(this.client, this.bucket, `${this.prefix}blobs/`)) {
      const digest = digestOfKey(this.prefix, o.key);
      if (digest) yield { digest, size: o.size, accessedAt: o.modified ?? this.now() };
    }
  }

  /**
   * Start-up clean-up. This process's own leftovers first: spill files, and the uploads their `.upload` files
   * name (aborted at once). Then uploads other replicas left when they died: any under our prefix begun more than
   * staleUploadMs ago (an upload of a live fill is never that old). Returns how many were removed.
   */
  async recover(): Promise<number> {
    const entries = await entriesOf(this.opts.spillDir);
    const writers = new Set<string>();
    for (const name of entries) {
      const base = name.endsWith(UPLOAD_ID_SUFFIX) ? name.slice(0, -UPLOAD_ID_SUFFIX.length) : name;
      const path = join(this.opts.spillDir, name);
      if (name.endsWith(UPLOAD_ID_SUFFIX)) {
        const digest = base.slice(0, base.indexOf('.')).replace('-', ':');
        const uploadId = (await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return ''; throw e; })).trim();
        // An upload S3 will not abort now (it is down) stays written down for the next start.
        if (isDigest(digest) && uploadId && !(await this.abortUpload(this.key(digest), uploadId))) continue;
      }
      await rm(path, { force: true, recursive: true });
      writers.add(base);
    }
    let stale = 0;
    const cutoff = this.now() - this.opts.staleUploadMs;
    for await (const u of this.uploads()) {
      if (u.initiated < cutoff && (await this.abortUpload(u.key, u.uploadId))) stale++;
    }
    return writers.size + stale;
  }

  /** Multipart uploads under our prefix. */
  private async *uploads(): AsyncIterable<{ key: string; uploadId: string; initiated: number }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(new ListMultipartUploadsCommand({
        Bucket: this.bucket, Prefix: `${this.prefix}blobs/`, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker,
      }));
      for (const u of page.Uploads ?? []) {
        if (u.Key && u.UploadId) yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** True when the upload is gone (aborted now, or already). */
  private async abortUpload(Key: string, UploadId: string): Promise<boolean> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return true;
      return false;
    }
  }

  /** Closes the client's sockets (shutdown). */
  close(): void {
    this.client.destroy();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}

/** The object's body with a `bytesRead` count (what the server's served-bytes metric reads when a client leaves). */
function countingStream(body: Readable): Readable & { bytesRead: number } {
  const out = Object.assign(new PassThrough({ highWaterMark: 1024 * 1024 }), { bytesRead: 0 });
  body.on('data', (chunk: Buffer) => { out.bytesRead += chunk.length; });
  pipeline(body, out, () => undefined);
  return out;
}

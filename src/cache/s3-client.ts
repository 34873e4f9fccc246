// The S3 client the S3 store talks through, with the settings S3-compatible stores (Ceph RGW 16.2, MinIO) need,
// the key layout (<prefix>blobs/<algorithm>/<hex>, manifests/ alike, named by the digest, so a key is never built
// from anything unvalidated), and how a failing store is told from an absent object.
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { StoreUnavailableError } from './blob-store.js';
import { isDigest } from '../oci/names.js';

export interface S3ConnectOptions {
  /** Omit for AWS; e.g. http://127.0.0.1:17480 for Ceph RGW. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /** Both or neither; neither means the SDK's default chain (environment, IRSA web identity, instance profile). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Concurrent connections to the store: every warm blob stream holds one for its duration. */
  maxSockets?: number;
}

export function createS3Client(opts: S3ConnectOptions): S3Client {
  return new S3Client({
    region: opts.region,
    forcePathStyle: opts.forcePathStyle,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.accessKeyId && opts.secretAccessKey ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } } : {}),
    // Checksums only where S3 demands them: RGW 16.2 refuses aws-chunked trailing checksums (411), and every blob
    // is verified against its digest before it is stored anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: 5_000,
      // Time to response headers (a part upload includes sending its body); a hung store fails, never hangs.
      requestTimeout: 60_000,
      throwOnRequestTimeout: true,
      // Silence inside a body (a stalled store, or a client that stopped reading a warm blob for this long).
      socketTimeout: 120_000,
      httpAgent: { keepAlive: true, maxSockets: opts.maxSockets ?? 256 },
      httpsAgent: { keepAlive: true, maxSockets: opts.maxSockets ?? 256 },
    },
  });
}

/** "" or a prefix ending in "/" ("mirror" becomes "mirror/"), so every key of ours lives under it. */
export function normalizePrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** The folders of our keys: one per kind of cached entry. */
export type KeyFolder = 'blobs' | 'manifests';

export function blobKey(prefix: string, digest: string, folder: KeyFolder = 'blobs'): string {
  if (!isDigest(digest)) throw new Error(`refusing a key for invalid digest ${JSON.stringify(digest)}`);
  const [alg, hex] = digest.split(':') as [string, string];
  return `${prefix}${folder}/${alg}/${hex}`;
}

/** The digest a key names, or undefined for a key that is not one of ours in that folder. */
export function digestOfKey(prefix: string, key: string, folder: KeyFolder = 'blobs'): string | undefined {
  if (!key.startsWith(`${prefix}${folder}/`)) return undefined;
  const parts = key.slice(prefix.length + folder.length + 1).split('/');
  if (parts.length !== 2) return undefined;
  const digest = `${parts[0]}:${parts[1]}`;
  return isDigest(digest) ? digest : undefined;
}

/** Every object under `prefix`, page by page: key, size and LastModified (undefined when the store gave none). */
export async function* listObjects(client: S3Client, bucket: string, prefix: string): AsyncIterable<{ key: string; size: number; modified: number | undefined }> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) yield { key: o.Key, size: o.Size ?? 0, modified: o.LastModified?.getTime() };
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** S3 says the object (or upload) is not there: HEAD gives NotFound, GET NoSuchKey, a bare 404 otherwise. */
export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchUpload' || e?.$metadata?.httpStatusCode === 404;
}

/** Longest wait for S3 to start answering a read: a hung store gives clients a 503, not a hang. */
export const READ_DEADLINE_MS = 10_000;

/**
 * Sends a read with a deadline on its response headers (never on the body: a warm stream may take minutes).
 * NotFound passes as it is; any other failure becomes StoreUnavailableError.
 */
export async function sendRead<T>(what: string, send: (abortSignal: AbortSignal) => Promise<T>, deadlineMs = READ_DEADLINE_MS): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
  try {
    return await send(controller.signal);
  } catch (err) {
    if (isNotFound(err)) throw err;
    throw unavailable(err, what);
  } finally {
    clearTimeout(timer);
  }
}

export function unavailable(err: unknown, what: string): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  return new StoreUnavailableError(`the object store failed to ${what}: ${e?.name ?? 'Error'}${status ? ` ${status}` : ''}: ${e?.message ?? String(err)}`, { cause: err });
}

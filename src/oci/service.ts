// What the routes ask for and get back. The server never knows whether bytes came from cache or upstream:
// it asks a RegistryService and maps the result. `M` is the mirror entry routing resolved the registry to; its
// type belongs to the upstream layer, so this layer only carries it down (every request resolves it once).
import type { Readable, Writable } from 'node:stream';
import type { ByteRange, RangePlan } from './range.js';

export interface Target<M = unknown> {
  /** Registry the request was routed to ("docker.io", "127.0.0.1:5000"), for logs and cache keys. */
  registry: string;
  /** The mirror entry routing resolved `registry` to; nothing below the route resolves it again. */
  mirror: M;
  /** Repository name at that registry, normalised ("library/alpine"), before any mirror rewrite. */
  repo: string;
  signal?: AbortSignal;
}

export interface Provenance {
  /** Endpoint that answered, or "cache". */
  endpoint?: string;
  attempts?: readonly { endpoint: string; status?: number; error?: string; ms: number; skipped?: true }[];
  /** A Warning header value, e.g. when a stale manifest is served because every upstream is down. */
  warning?: string;
  /** How the cache answered (for the access log and metrics). */
  cache?: 'hit' | 'miss' | 'stale' | 'joined';
}

export interface ManifestRequest<M = unknown> extends Target<M> {
  ref: string;
  method: 'GET' | 'HEAD';
  /** The client's Accept, normalised to the known manifest media types (normaliseAccept); forwarded as such. */
  accept: string;
}

export interface ManifestResult extends Provenance {
  digest: string;
  mediaType: string;
  size: number;
  /** Present for GET. */
  body?: Buffer;
}

export interface BlobRequest<M = unknown> extends Target<M> {
  digest: string;
  method: 'GET' | 'HEAD';
  range?: ByteRange;
  /** The caller writes to a client's response and takes a `sender` instead of a `stream` where one is offered. */
  acceptsSender?: boolean;
}

/**
 * A body its owner writes into the response itself, reusing a few buffers as each write is flushed: a Readable
 * must hand over a new buffer per read, and that garbage is what sends V8 into back-to-back mark-compacts.
 */
export interface BlobSender {
  /** Writes exactly the plan's bytes into `out`; resolves once the last write is flushed. A read error destroys `out` and rejects. */
  sendTo(out: Writable): Promise<void>;
  /** The body will not be sent after all (an error first): releases what it holds. */
  discard(): void;
}

export interface BlobResult extends Provenance {
  digest: string;
  /** Full size of the blob. */
  size: number;
  mediaType?: string;
  /** What to answer (from planRange): the route switches on it. */
  plan: RangePlan;
  /** Present for full and partial plans (or `sender`); emits exactly the plan's bytes. Errors mid-way mean: abort the client. */
  stream?: Readable;
  /** Instead of bytes: a short-lived URL the client fetches them from (307), with its Range. */
  redirect?: string;
  /** Instead of `stream`, only when the request said `acceptsSender`. */
  sender?: BlobSender;
}

export interface ListRequest<M = unknown> extends Target<M> {
  /** Query string to forward (n, last, artifactType), without "?". */
  query: string;
  digest?: string;
}

export interface ListResult extends Provenance {
  body: Buffer;
  contentType: string;
  /** Upstream Link header (pagination), for the route to rewrite. */
  link?: string;
  /** Referrers filtering applied upstream. */
  filtersApplied?: string;
}

export interface RegistryService<M = unknown> {
  manifest(req: ManifestRequest<M>): Promise<ManifestResult>;
  blob(req: BlobRequest<M>): Promise<BlobResult>;
  tags(req: ListRequest<M>): Promise<ListResult>;
  referrers(req: ListRequest<M> & { digest: string }): Promise<ListResult>;
}

// Content-addressed storage for blobs and manifests. A writer becomes visible only after commit() has checked
// size and digest; every implementation (filesystem, later S3) runs the contract suite in test/contract/.
import type { Readable } from 'node:stream';
import type { BlobSender } from '../oci/service.js';

export interface StoredBlob {
  digest: string;
  size: number;
  /** Last access (ms since epoch) as persisted, for LRU order across restarts. */
  accessedAt: number;
}

export interface BlobWriter {
  /** Appends bytes; resolves when they are durably queued (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Appends the chunks in order as one write, where the writer can do so without a concatenation. */
  writev?(chunks: readonly Buffer[]): Promise<void>;
  /** Bytes written so far. */
  readonly written: number;
  /** Reads back bytes already written (for clients following a fill as it arrives). */
  read(position: number, length: number): Promise<Buffer>;
  /** Checks size and digest of what was written; throws (and discards) on a mismatch. Idempotent. */
  verify(expectedSize?: number): Promise<void>;
  /** Verifies (unless already done), makes the blob durable (fsync) and visible (rename). */
  commit(expectedSize?: number): Promise<StoredBlob>;
  /** Discards everything written. */
  abort(): Promise<void>;
  /** Releases the writer's resources after commit, once nobody reads through it any more. */
  close(): Promise<void>;
}

export interface BlobStore {
  stat(digest: string): Promise<StoredBlob | undefined>;
  /** Streams [start, end] (inclusive) of a committed blob. */
  open(digest: string, range?: { start: number; end: number }): Promise<Readable>;
  /**
   * Like open(), as a sender that writes into a response from reused buffers (file-backed stores only). `onClose`
   * gets the bytes sent once the blob is released (sent, failed or discarded); `size` is the whole blob's, when known.
   */
  sender?(digest: string, range: { start: number; end: number }, onClose: (sent: number) => void, size?: number): Promise<BlobSender>;
  /** Reads a small committed blob whole (manifests). */
  readAll(digest: string): Promise<Buffer | undefined>;
  /** Stores a small verified payload in one go (manifests). */
  put(digest: string, data: Buffer): Promise<StoredBlob>;
  createWriter(digest: string): Promise<BlobWriter>;
  delete(digest: string): Promise<void>;
  /** Records an access at `at` (default now) so LRU order survives a restart; the index throttles the calls. */
  touch(digest: string, at?: Date): Promise<void>;
  /** Every committed blob, for rebuilding the index at start-up. */
  list(): AsyncIterable<StoredBlob>;
  /** Removes leftovers of interrupted writes (after a crash). Returns how many were removed. */
  recover(): Promise<number>;
  /** A URL clients can GET the committed blob from directly for `seconds` (stores that can sign one: S3). */
  presign?(digest: string, seconds: number): Promise<string>;
}

export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError';
  constructor(readonly expected: string, readonly actual: string, readonly expectedSize?: number, readonly actualSize?: number) {
    super(expectedSize !== undefined && actualSize !== expectedSize
      ? `size mismatch for ${expected}: expected ${expectedSize} bytes, got ${actualSize}`
      : `digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** The store cannot be reached or refuses to work (S3 down, hung, access denied): not an absent entry. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'STORE_UNAVAILABLE';
}

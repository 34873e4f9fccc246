// Small cached entries kept in memory (cache.memorySize): manifests and blobs up to MEMORY_ENTRY_MAX, in front of
// the store. A node resolving an image asks for the same tag's manifest, its config and small layers again and
// again; from memory each costs one socket write instead of an open, a stat, a read and a close on the thread
// pool. Entries are immutable (content-addressed, verified when they were stored); a delete through the store
// (eviction, `ocimirror cache rm`) drops the copy too. Bounded by bytes (lru-cache's maxSize).
import type { Readable, Writable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { BlobSender } from '../oci/service.js';
import { readCapped } from '../upstream/capped-body.js';
import type { BlobStore, BlobWriter, StoredBlob } from './blob-store.js';
import type { IndexedEntry } from './lru-index.js';
import type { ManifestHead, ManifestStore, StoredManifest } from './manifest-store.js';

/** Larger entries are always read from the store: a few big ones would push out hundreds of small ones. */
export const MEMORY_ENTRY_MAX = 1024 * 1024;

/** One byte budget shared by blobs and manifests (keys `b <digest>` and `m <digest>`). */
export class MemoryTier {
  private readonly lru: LRUCache<string, Buffer | StoredManifest>;

  constructor(readonly maxBytes: number) {
    this.lru = new LRUCache({ maxSize: maxBytes, sizeCalculation: (v) => Math.max(1, Buffer.isBuffer(v) ? v.length : v.body.length) });
  }

  /** Whether an entry of `size` bytes is kept here at all. */
  holds(size: number): boolean {
    return size <= Math.min(MEMORY_ENTRY_MAX, this.maxBytes / 16);
  }

  blob(digest: string): Buffer | undefined {
    return this.lru.get(`b ${digest}`) as Buffer | undefined;
  }

  manifest(digest: string): StoredManifest | undefined {
    return this.lru.get(`m ${digest}`) as StoredManifest | undefined;
  }

  keepBlob(digest: string, bytes: Buffer): void {
    if (this.holds(bytes.length)) this.lru.set(`b ${digest}`, bytes);
  }

  keepManifest(m: StoredManifest): void {
    if (this.holds(m.body.length)) this.lru.set(`m ${m.digest}`, m);
  }

  drop(kind: 'b' | 'm', digest: string): void {
    this.lru.delete(`${kind} ${digest}`);
  }

  /** Bytes held now (status, tests). */
  get bytes(): number {
    return this.lru.calculatedSize;
  }
}

/** A blob held in memory, written into a response in one write. */
export class BufferSender implements BlobSender {
  private done = false;

  constructor(private readonly bytes: Buffer, private readonly onClose: (sent: number) => void) {}

  discard(): void {
    this.finish(0);
  }

  sendTo(out: Writable): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // A client that hung up gets the callback with an error (the stream was destroyed before the write finished).
      out.write(this.bytes, (err) => {
        this.finish(err ? 0 : this.bytes.length);
        if (err) reject(new Error('client hung up', { cause: err }));
        else resolve();
      });
    });
  }

  private finish(sent: number): void {
    if (this.done) return;
    this.done = true;
    this.onClose(sent);
  }
}

/** A BlobStore with the small committed blobs it has served kept in a MemoryTier. */
export class MemoryBlobStore implements BlobStore {
  constructor(private readonly inner: BlobStore & Required<Pick<BlobStore, 'sender'>>, private readonly memory: MemoryTier) {}

  stat(digest: string): Promise<StoredBlob | undefined> { return this.inner.stat(digest); }
  open(digest: string, range?: { start: number; end: number }): Promise<Readable> { return this.inner.open(digest, range); }
  readAll(digest: string): Promise<Buffer | undefined> { return this.inner.readAll(digest); }
  put(digest: string, data: Buffer): Promise<StoredBlob> { return this.inner.put(digest, data); }
  createWriter(digest: string): Promise<BlobWriter> { return this.inner.createWriter(digest); }
  touch(digest: string, at?: Date): Promise<void> { return this.inner.touch(digest, at); }
  list(): AsyncIterable<StoredBlob> { return this.inner.list(); }
  recover(): Promise<number> { return this.inner.recover(); }

  async delete(digest: string): Promise<void> {
    this.memory.drop('b', digest);
    await this.inner.delete(digest);
  }

  /** `size`, the whole blob's as the index knows it, decides whether it is read into memory once and kept. */
  async sender(digest: string, range: { start: number; end: number }, onClose: (sent: number) => void, size?: number): Promise<BlobSender> {
    let bytes = this.memory.blob(digest);
    if (!bytes && size !== undefined && this.memory.holds(size)) {
      // Exactly the bytes the index knows of, never more (a file grown behind our back is not read whole).
      const read = size === 0 ? Buffer.alloc(0) : await readCapped(await this.inner.open(digest, { start: 0, end: size - 1 }), size, undefined, () => new Error(`${digest}: more than the ${size} bytes asked for`));
      if (read.length === size) { bytes = read; this.memory.keepBlob(digest, read); }
    }
    if (!bytes) return this.inner.sender(digest, range, onClose, size);
    return new BufferSender(bytes.subarray(range.start, range.end + 1), onClose);
  }
}

/** A ManifestStore with the manifests it has read or stored kept in a MemoryTier. */
export class MemoryManifestStore implements ManifestStore {
  constructor(private readonly inner: ManifestStore, private readonly memory: MemoryTier) {}

  async head(digest: string): Promise<ManifestHead | undefined> {
    const m = this.memory.manifest(digest);
    return m ? { digest: m.digest, mediaType: m.mediaType, size: m.size } : this.inner.head(digest);
  }

  async get(digest: string): Promise<StoredManifest | undefined> {
    const kept = this.memory.manifest(digest);
    if (kept) return kept;
    const m = await this.inner.get(digest);
    if (m) this.memory.keepManifest(m);
    return m;
  }

  async put(digest: string, mediaType: string, body: Buffer): Promise<ManifestHead> {
    const head = await this.inner.put(digest, mediaType, body);
    this.memory.keepManifest({ ...head, body });
    return head;
  }

  async delete(digest: string): Promise<void> {
    this.memory.drop('m', digest);
    await this.inner.delete(digest);
  }

  touch(digest: string, at?: Date): Promise<void> { return this.inner.touch(digest, at); }
  list(): AsyncIterable<IndexedEntry> { return this.inner.list(); }
}

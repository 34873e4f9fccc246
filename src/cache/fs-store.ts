// The embedded filesystem store: <dir>/blobs/sha256/ab/<hex>. Writes go to <dir>/tmp, are hashed as they
// arrive, fsynced, and renamed into place only when size and digest match — a crash leaves only tmp files,
// which recover() removes.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { algorithmOf } from '../oci/digest.js';
import { digestPath, entriesOf, walkDigests } from './fs-layout.js';
import { DigestMismatchError, type BlobStore, type BlobWriter, type StoredBlob } from './blob-store.js';
import { FileSender } from './file-sender.js';
import { OffThreadWriter } from './write-worker.js';

export class FsBlobStore implements BlobStore {
  /** `inlineHashing`: hash and write on the calling thread (command-line export and import), not a worker's. */
  constructor(readonly dir: string, private readonly opts: { inlineHashing?: boolean } = {}) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
  }

  /** Digests are validated before they become paths: nothing else ever reaches the disk. */
  path(digest: string): string {
    return digestPath(this.dir, 'blobs', digest);
  }

  async stat(digest: string): Promise<StoredBlob | undefined> {
    try {
      const s = await stat(this.path(digest));
      return { digest, size: s.size, accessedAt: s.mtimeMs };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async open(digest: string, range?: { start: number; end: number }): Promise<Readable> {
    const handle = await open(this.path(digest), 'r');
    // The stream owns the FileHandle (never its raw fd: the handle would close it again when collected).
    return handle.createReadStream({ autoClose: true, ...(range ? { start: range.start, end: range.end } : {}), highWaterMark: 1024 * 1024 });
  }

  async sender(digest: string, range: { start: number; end: number }, onClose: (sent: number) => void): Promise<FileSender> {
    return new FileSender(await open(this.path(digest), 'r'), range.start, range.end, onClose);
  }

  async readAll(digest: string): Promise<Buffer | undefined> {
    try { return await readFile(this.path(digest)); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async put(digest: string, data: Buffer): Promise<StoredBlob> {
    const w = await this.createWriter(digest);
    try {
      await w.write(data);
      return await w.commit(data.length);
    } catch (e) {
      await w.abort();
      throw e;
    } finally {
      await w.close();
    }
  }

  async createWriter(digest: string): Promise<BlobWriter> {
    const final = this.path(digest);
    const tmp = join(this.dir, 'tmp', `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}`);
    const handle = await open(tmp, 'w+');
    return new FsBlobWriter(digest, tmp, final, handle, this.opts.inlineHashing ?? false);
  }

  async delete(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /** mtime is the persisted access time, so LRU order survives a restart (the index throttles these writes). */
  async touch(digest: string, at = new Date()): Promise<void> {
    await utimes(this.path(digest), at, at).catch((e: NodeJS.ErrnoException) => {
      // Evicted meanwhile: nothing to record. Anything else (EACCES, EROFS, EIO) the index logs.
      if (e.code !== 'ENOENT') throw e;
    });
  }

  async *list(): AsyncIterable<StoredBlob> {
    for await (const f of walkDigests(this.dir, 'blobs')) yield { digest: f.digest, size: f.size, accessedAt: f.mtimeMs };
  }

  async recover(): Promise<number> {
    const entries = await entriesOf(join(this.dir, 'tmp'));
    await Promise.all(entries.map((e) => rm(join(this.dir, 'tmp', e), { force: true, recursive: true })));
    return entries.length;
  }
}

class FsBlobWriter implements BlobWriter {
  /** Hashes and writes on a worker thread; the main thread only copies the bytes over. */
  private readonly thread: OffThreadWriter;
  private position = 0;
  private done = false;

  constructor(readonly digest: string, private readonly tmp: string, private readonly final: string, private readonly handle: FileHandle, inline: boolean) {
    this.thread = new OffThreadWriter(handle.fd, algorithmOf(digest), inline);
  }

  get written(): number {
    return this.position;
  }

  write(chunk: Buffer): Promise<void> {
    return this.writev([chunk]);
  }

  /** Appends the chunks as one write: they are copied straight into the worker's buffer, never concatenated. */
  async writev(chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    await this.thread.write(chunks, this.position);
    this.position += length;
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.handle.read(buf, 0, length, position);
    return bytesRead === length ? buf : buf.subarray(0, bytesRead);
  }

  private verified = false;

  async verify(expectedSize?: number): Promise<void> {
    if (this.verified) return;
    const actual = `${algorithmOf(this.digest)}:${await this.thread.digest()}`;
    if (actual !== this.digest || (expectedSize !== undefined && expectedSize !== this.position)) {
      await this.abort();
      throw new DigestMismatchError(this.digest, actual, expectedSize, this.position);
    }
    this.verified = true;
  }

  async commit(expectedSize?: number): Promise<StoredBlob> {
    await this.verify(expectedSize);
    await this.handle.sync();
    const dir = this.final.slice(0, this.final.lastIndexOf('/'));
    await mkdir(dir, { recursive: true });
    await rename(this.tmp, this.final);
    // fsync the directory so the rename itself survives a crash.
    const d = await open(dir, 'r');
    await d.sync().finally(() => d.close());
    this.done = true;
    // Readers following the fill may still hold this handle; it closes when they are done (see BlobFill).
    return { digest: this.digest, size: this.position, accessedAt: Date.now() };
  }

  /** Closes the file handle (after commit, once no reader needs it). */
  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    // The worker must be done with the descriptor before it is closed (and its number reused by another file).
    await this.thread.release();
    await this.handle.close().catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}

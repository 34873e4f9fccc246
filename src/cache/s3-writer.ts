// A blob on its way into S3. Bytes go to a local spill file first — clients following the fill read them back from
// there, and each part is read from there when it is sent — and then, behind the writes, into a multipart upload,
// one part per partSize, a few parts in flight. The upload is created when the first part is full, so a blob smaller than one
// part (a manifest, a config) is a single PutObject at commit. Nothing is readable in the bucket before commit:
// an uncompleted multipart upload is not an object, and it is completed only after the digest matched.
import { createHash, type Hash } from 'node:crypto';
import { rm, writeFile, type FileHandle } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand,
  type CompletedPart, type S3Client,
} from '@aws-sdk/client-s3';
import { algorithmOf } from '../oci/digest.js';
import { DigestMismatchError, type BlobWriter, type StoredBlob } from './blob-store.js';
import { readFully, writeFully } from './file-io.js';
import { isNotFound } from './s3-client.js';
import type { Slots } from './slots.js';

export interface S3WriterTarget {
  client: S3Client;
  bucket: string;
  key: string;
  digest: string;
  /** The spill file; `${spillPath}.upload` holds the multipart upload's id while one exists (for recover()). */
  spillPath: string;
  partSize: number;
  /** Parts uploading at once per writer. */
  partConcurrency: number;
  /** Shared by every writer of the store: each part buffer (partSize bytes) holds one, so memory is bounded. */
  slots: Slots;
}

export const UPLOAD_ID_SUFFIX = '.upload';

export class S3BlobWriter implements BlobWriter {
  private readonly hash: Hash;
  private position = 0;
  /** Bytes handed to part uploads so far (always a multiple of partSize until commit queues the last part). */
  private queuedTo = 0;
  private partCount = 0;
  private upload: Promise<string> | undefined;
  private readonly parts: CompletedPart[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown;
  private state: 'writing' | 'verified' | 'committed' | 'aborted' = 'writing';
  private committing: Promise<StoredBlob> | undefined;
  private pumping: Promise<void> | undefined;

  constructor(private readonly t: S3WriterTarget, private readonly handle: FileHandle) {
    this.hash = createHash(algorithmOf(t.digest));
  }

  get written(): number {
    return this.position;
  }

  async write(chunk: Buffer): Promise<void> {
    this.assertWriting();
    this.hash.update(chunk);
    await writeFully(this.handle, chunk, this.position);
    this.position += chunk.length;
    this.pump();
  }

  /**
   * Parts are read back from the spill file and uploaded behind the writes, never holding them up: a store slower
   * than upstream delays the commit, not the clients following the fill. Once S3 failed, bytes still go to the
   * spill file: the fill serves its clients from there, uncached.
   */
  private pump(): void {
    this.pumping ??= this.queueFullParts().finally(() => { this.pumping = undefined; });
  }

  private async queueFullParts(): Promise<void> {
    while (!this.stopped() && this.position - this.queuedTo >= this.t.partSize) {
      while (this.inflight.size >= this.t.partConcurrency) await Promise.race(this.inflight);
      const release = await this.t.slots.take();
      if (this.stopped()) { release(); return; }
      this.queuePart(this.t.partSize, release);
    }
  }

  /** No more parts: one failed, or the writer was aborted. */
  private stopped(): boolean {
    return this.failure !== undefined || this.state === 'aborted';
  }

  /** Every full part written so far is queued (the pump may have stopped just before the last write). */
  private async drainPump(): Promise<void> {
    while (this.pumping) await this.pumping;
    await this.queueFullParts();
  }

  private assertWriting(): void {
    if (this.state !== 'writing') throw new Error(`cannot write to a blob writer that is ${this.state}`);
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.handle.read(buf, 0, length, position);
    return bytesRead === length ? buf : buf.subarray(0, bytesRead);
  }

  async verify(expectedSize?: number): Promise<void> {
    if (this.state === 'verified' || this.state === 'committed') return;
    if (this.state === 'aborted') throw new Error('blob writer was aborted');
    const actual = `${algorithmOf(this.t.digest)}:${this.hash.digest('hex')}`;
    if (actual !== this.t.digest || (expectedSize !== undefined && expectedSize !== this.position)) {
      await this.abort();
      throw new DigestMismatchError(this.t.digest, actual, expectedSize, this.position);
    }
    this.state = 'verified';
  }

  commit(expectedSize?: number): Promise<StoredBlob> {
    this.committing ??= this.finish(expectedSize);
    return this.committing;
  }

  private async finish(expectedSize?: number): Promise<StoredBlob> {
    await this.verify(expectedSize);
    try {
      await this.drainPump();
      if (this.failure) throw this.failure;
      if (this.upload === undefined) await this.putWhole();
      else await this.completeUpload();
    } catch (err) {
      // Nothing becomes visible; the spill file stays readable for the fill's clients until close().
      await this.dropUpload();
      throw err;
    }
    this.state = 'committed';
    return { digest: this.t.digest, size: this.position, accessedAt: Date.now() };
  }

  /** Smaller than one part: one PutObject of the whole spill file. */
  private async putWhole(): Promise<void> {
    const release = await this.t.slots.take();
    try {
      const body = await readFully(this.handle, 0, this.position);
      await this.t.client.send(new PutObjectCommand({ Bucket: this.t.bucket, Key: this.t.key, Body: body, ContentLength: body.length }));
    } finally {
      release();
    }
  }

  private async completeUpload(): Promise<void> {
    if (this.position > this.queuedTo) this.queuePart(this.position - this.queuedTo, await this.t.slots.take());
    await this.partsUploaded();
    const uploadId = await (this.upload as Promise<string>);
    // RGW 16.2 answers an empty ETag here; nothing of ours needs it.
    await this.t.client.send(new CompleteMultipartUploadCommand({
      Bucket: this.t.bucket, Key: this.t.key, UploadId: uploadId, MultipartUpload: { Parts: this.parts },
    }));
    await rm(this.t.spillPath + UPLOAD_ID_SUFFIX, { force: true });
  }

  /** Resolves once every full part written so far is in S3; rejects with the first part that failed. */
  async partsUploaded(): Promise<void> {
    await this.drainPump();
    while (this.inflight.size > 0) await Promise.race(this.inflight);
    if (this.failure) throw this.failure;
  }

  /** Starts uploading the next `length` bytes as a part; `release` frees its slot when it is done. */
  private queuePart(length: number, release: () => void): void {
    const start = this.queuedTo;
    const partNumber = ++this.partCount;
    this.queuedTo += length;
    const p: Promise<void> = this.uploadPart(partNumber, start, length).then(
      (etag) => { this.parts[partNumber - 1] = { PartNumber: partNumber, ETag: etag }; },
      (err: unknown) => { this.failure ??= err; },
    ).then(() => { release(); this.inflight.delete(p); });
    this.inflight.add(p);
  }

  private async uploadPart(partNumber: number, start: number, length: number): Promise<string> {
    const uploadId = await this.uploadId();
    // A Buffer (not a file stream) so the SDK can retry a failed part by itself.
    const body = await readFully(this.handle, start, length);
    const res = await this.t.client.send(new UploadPartCommand({
      Bucket: this.t.bucket, Key: this.t.key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: length,
    }));
    return res.ETag ?? '';
  }

  private uploadId(): Promise<string> {
    this.upload ??= (async () => {
      const res = await this.t.client.send(new CreateMultipartUploadCommand({ Bucket: this.t.bucket, Key: this.t.key }));
      if (!res.UploadId) throw new Error('S3 answered CreateMultipartUpload without an UploadId');
      // Written down so that recover() after a crash aborts it at once instead of waiting for it to go stale.
      await writeFile(this.t.spillPath + UPLOAD_ID_SUFFIX, res.UploadId);
      return res.UploadId;
    })();
    return this.upload;
  }

  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    await this.dropUpload();
    await this.handle.close().catch(() => undefined);
    await rm(this.t.spillPath, { force: true });
  }

  /** Aborts the multipart upload (if any) once its parts settled; an upload S3 would not abort stays written down. */
  private async dropUpload(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    const uploadId = await this.upload?.catch(() => undefined);
    this.upload = undefined;
    let uploadGone = true;
    if (uploadId) {
      uploadGone = await this.t.client.send(new AbortMultipartUploadCommand({ Bucket: this.t.bucket, Key: this.t.key, UploadId: uploadId }))
        .then(() => true, (err: unknown) => isNotFound(err));
    }
    // recover() tries again with what is written down.
    if (uploadGone) await rm(this.t.spillPath + UPLOAD_ID_SUFFIX, { force: true });
  }

  /** After commit: drops the spill file once no reader needs it. Before commit it is an abort. */
  async close(): Promise<void> {
    await this.committing?.catch(() => undefined);
    if (this.state !== 'committed') {
      await this.abort();
      return;
    }
    await this.handle.close().catch(() => undefined);
    await rm(this.t.spillPath, { force: true });
  }
}

// A committed blob written into a client's response from a few reused buffers (a BlobSender): reads run ahead of
// the socket by at most BUFFERS_PER_SEND, a buffer is read into again only once its write has been flushed, and
// free buffers wait in a small process-wide pool. A warm GET of any size thus allocates no memory per read: no
// garbage for V8 to count as external memory, no mark-compact mode (bench/PROFILE.md §1), no dead buffers in RSS.
import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { BlobSender } from '../oci/service.js';
import { readInto } from './file-io.js';

/** One read and one socket write: large enough that per-call costs vanish, small enough to pool. */
export const SEND_BUFFER_BYTES = 256 * 1024;
/** Per response: reads ahead of the socket by up to 768 KiB (buffers being read, written, ready). */
export const BUFFERS_PER_SEND = 3;
/** Free buffers kept for the next responses; more are dropped (the GC reclaims them). */
const POOL_MAX = 24;

const pool: Buffer[] = [];
const takeBuffer = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(SEND_BUFFER_BYTES);
const giveBuffer = (buf: Buffer): void => { if (pool.length < POOL_MAX) pool.push(buf); };

/** Free buffers in the pool now (tests). */
export const pooledSendBuffers = (): number => pool.length;

interface PendingRead { buf: Buffer; bytes: Promise<Buffer> }

export class FileSender implements BlobSender {
  private closed = false;
  private sent = 0;

  /** Sends [start, end] (inclusive) of the file; `onClose(bytesFlushed)` runs once, when the handle is closed. */
  constructor(
    private readonly handle: FileHandle,
    private readonly start: number,
    private readonly end: number,
    private readonly onClose: (sent: number) => void,
  ) {}

  discard(): void {
    this.close();
  }

  sendTo(out: Writable): Promise<void> {
    const last = this.end + 1;
    let next = this.start;
    const reads: PendingRead[] = [];
    let spare = BUFFERS_PER_SEND;
    let awaiting = false;
    let unflushed = 0;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: unknown) => {
        if (settled) return;
        settled = true;
        out.off('close', onGone);
        // Reads not yet written: each buffer is free once its read has finished, either way.
        for (const r of reads.splice(0)) r.bytes.then(() => giveBuffer(r.buf), () => giveBuffer(r.buf));
        this.close();
        if (err === undefined) resolve();
        else reject(err instanceof Error ? err : new Error(String(err)));
      };
      // The client went away (its socket closed or a write failed): a pending write that never calls back
      // leaves its buffer to the GC.
      const onGone = (cause?: unknown) => {
        if (!out.destroyed) out.destroy();
        settle(new Error('client hung up', { cause }));
      };
      out.once('close', onGone);
      /** Reading the file failed: the response is cut, so the client cannot take a short body for the blob. */
      const fail = (err: unknown) => {
        if (!out.destroyed) out.destroy(err instanceof Error ? err : undefined);
        settle(err);
      };
      const readAhead = () => {
        while (spare > 0 && next < last) {
          spare--;
          const buf = takeBuffer();
          const n = Math.min(SEND_BUFFER_BYTES, last - next);
          reads.push({ buf, bytes: readInto(this.handle, buf, next, n) });
          next += n;
        }
      };
      // Writes the reads in order, each as soon as it is in; the socket queues them, the callbacks recycle.
      const pump = () => {
        if (awaiting || settled) return;
        const head = reads.shift();
        if (!head) {
          if (next >= last && unflushed === 0) settle();
          return;
        }
        awaiting = true;
        head.bytes.then((chunk) => {
          awaiting = false;
          if (settled) return giveBuffer(head.buf);
          unflushed++;
          out.write(chunk, (err) => {
            unflushed--;
            // Called back, the socket no longer holds the buffer, written or not: a client that hangs up
            // mid-body (the soak's "drop" clients, over a thousand a minute) returns its buffers too.
            giveBuffer(head.buf);
            if (err) return onGone(err);
            this.sent += chunk.length;
            spare++;
            readAhead();
            pump();
          });
          pump();
        }, fail);
      };
      readAhead();
      pump();
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.handle.close().catch(() => undefined);
    this.onClose(this.sent);
  }
}

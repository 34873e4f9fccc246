// A client following a running fill, written straight into its response (a BlobSender): each wake-up of the fill
// writes the window's new chunks to the socket without a copy, corked into one write, and a client that is behind
// the window (it joined late, or its socket was full) reads the file instead. The fill never waits for a client:
// one that stops reading holds at most QUEUE_BYTES beyond its socket buffer, and the fill goes on without it.
import type { Writable } from 'node:stream';
import type { BlobSender } from '../oci/service.js';
import { SEND_BUFFER_BYTES } from './file-sender.js';
import type { BlobFill } from './fill.js';

/**
 * Bytes queued for one client's socket before it is sent no more until it drains: several window chunks go out as
 * one corked write (a write per 64 KiB chunk and a 'drain' for each was most of a fan-out's JS; 8 cold clients of
 * 200 MiB: 1.2-1.25 s and 1.3 CPU s, against 1.35-1.9 s and 1.5-2.0 CPU s), and a stalled client holds no more than
 * this of the blob (references to window chunks, never copies).
 */
const QUEUE_BYTES = 1024 * 1024;

export class FillSender implements BlobSender {
  private position: number;
  private sent = 0;
  private finished = false;

  /**
   * Sends [start, end] (inclusive) of the fill's blob. `release` comes from fill.acquire(), taken when the client
   * joined; `onDone(bytesSent)` runs once, when the client is done with the fill (sent, failed or discarded).
   */
  constructor(
    private readonly fill: BlobFill,
    start: number,
    private readonly end: number,
    private readonly release: () => void,
    private readonly onDone: (sent: number) => void,
  ) {
    this.position = start;
  }

  discard(): void {
    this.finish();
  }

  sendTo(out: Writable): Promise<void> {
    const { fill, end } = this;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      /** The socket holds QUEUE_BYTES: nothing more until it drains. */
      let full = false;
      /** A file read is in flight: its bytes come next, so nothing else may be written meanwhile. */
      let reading = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        fill.off('progress', pump);
        out.off('drain', onDrain);
        out.off('close', onGone);
        this.finish();
        if (err) reject(err);
        else resolve();
      };
      const onGone = () => settle(new Error('client hung up'));
      // A drain ends only the wait for the socket, never a file read's: bytes after a read in flight would go
      // out ahead of it (the body would repeat and shift, its length unchanged).
      const onDrain = () => { full = false; pump(); };
      const write = (buf: Buffer) => {
        this.position += buf.length;
        this.sent += buf.length;
        out.write(buf);
        if (out.writableLength >= QUEUE_BYTES) full = true;
      };
      // Bytes the window no longer holds are on disk: one file read at a time, then back to the window.
      const readFile = (length: number) => {
        reading = true;
        fill.read(this.position, length).then((buf) => {
          reading = false;
          if (settled) return;
          if (buf.length > 0) write(buf);
          // Nothing on disk there yet: the next 'progress' (a batch written, the fill's end) calls again.
          if (buf.length > 0) pump();
        }, (err: Error) => { out.destroy(err); settle(err); });
      };
      const pump = (): void => {
        if (settled || full || reading) return;
        if (fill.state === 'failed') {
          const err = fill.error ?? new Error('blob fill failed');
          out.destroy(err);
          return settle(err);
        }
        out.cork();
        try {
          while (!full && !reading) {
            if (this.position > end) {
              // A range that reaches the blob's end (or an empty blob) ends only after the digest was verified.
              if (end >= (fill.size ?? 0) - 1 && !fill.verified && fill.state !== 'done') return;
              return settle();
            }
            const available = Math.min(fill.readable, end + 1) - this.position;
            if (available <= 0) return; // wait for the next 'progress'
            const buf = fill.peek(this.position, available);
            if (!buf) return readFile(Math.min(available, SEND_BUFFER_BYTES));
            write(buf);
          }
        } finally {
          out.uncork();
        }
      };
      fill.on('progress', pump);
      out.on('drain', onDrain);
      out.once('close', onGone);
      pump();
    });
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
    this.onDone(this.sent);
  }
}

// FillSender against a fill whose bytes are only on disk (a client that joined late, or fell behind the window):
// file reads are slow and the client's socket drains while one is in flight. The body must still be the blob's
// bytes in order — a drain may end the wait for the socket, never the wait for a read (it once did, and every
// such client got a body of the right length with repeated, shifted bytes).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FillSender } from '../../../src/cache/fill-sender.js';
import type { BlobFill } from '../../../src/cache/fill.js';
import { FillWindow } from '../../../src/cache/fill-window.js';

/** A finished, verified fill with an empty window: every byte comes from read(), each after `readMs`. */
function diskOnlyFill(data: Buffer, readMs: () => number): BlobFill {
  const fill = Object.assign(new EventEmitter(), {
    state: 'done', verified: true, size: data.length, readable: data.length, error: undefined,
    peek: () => undefined,
    read: (position: number, length: number) => new Promise<Buffer>((resolve) => {
      setTimeout(() => resolve(Buffer.from(data.subarray(position, position + length))), readMs());
    }),
  });
  return fill as unknown as BlobFill;
}

/** A socket-like sink: every write is "full" (returns false) and is flushed on the next turn, so it drains often. */
function drainingSink(): { out: Writable; body: () => Buffer } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) { chunks.push(Buffer.from(chunk)); setImmediate(cb); },
    writev(items, cb) { for (const i of items) chunks.push(Buffer.from(i.chunk as Buffer)); setImmediate(cb); },
  });
  return { out, body: () => Buffer.concat(chunks) };
}

async function send(data: Buffer, start: number, end: number, readMs: () => number): Promise<{ body: Buffer; sent: number }> {
  const { out, body } = drainingSink();
  let sent = -1;
  const sender = new FillSender(diskOnlyFill(data, readMs), start, end, () => undefined, (n) => { sent = n; });
  await sender.sendTo(out);
  // What the sender wrote may still be queued in the sink: the server ends the response, so does the test.
  await new Promise((resolve) => out.end(resolve));
  return { body: body(), sent };
}

describe('FillSender reading the file while the socket drains', () => {
  it('sends the blob in order, each byte once', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 4321);
    const r = await send(data, 0, data.length - 1, () => 3);
    expect(r.body.length).toBe(data.length);
    expect(r.body.equals(data)).toBe(true);
    expect(r.sent).toBe(data.length);
  });

  it('any range, any read timing: exactly the range', async () => {
    const data = randomBytes(1024 * 1024 + 77);
    await fc.assert(fc.asyncProperty(
      fc.nat(data.length - 1), fc.nat(data.length - 1), fc.array(fc.nat(4), { minLength: 1, maxLength: 8 }),
      async (a, b, delays) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        let i = 0;
        const r = await send(data, start, end, () => delays[i++ % delays.length]!);
        expect(r.body.equals(data.subarray(start, end + 1))).toBe(true);
      },
    ), { numRuns: 25 });
  });
});

/**
 * A running fill driven by a script: chunks of the given sizes arrive one per turn, the "disk" lags behind by
 * `lag` chunks, the window (the real FillWindow, with a small limit) lets go of what is on disk, and at the end the
 * fill is verified, done, and its window cleared — what BlobFill does, with the timing in the test's hands.
 */
function runningFill(data: Buffer, sizes: number[], lag: number, windowLimit: number): BlobFill & { verified: boolean } {
  const window = new FillWindow(windowLimit);
  const ends: number[] = [];
  class Scripted extends EventEmitter {
    state = 'running'; verified = false; size = data.length; error = undefined; received = 0; written = 0;
    get readable(): number { return this.verified ? data.length : Math.min(this.received, data.length - 1); }
    peek(position: number, length: number) { return window.peek(position, length); }
    read(position: number, length: number) {
      const n = Math.min(length, this.written - position);
      return new Promise<Buffer>((resolve) => {
        setTimeout(() => resolve(n > 0 ? Buffer.from(data.subarray(position, position + n)) : Buffer.alloc(0)), 1);
      });
    }
  }
  const fill = new Scripted();
  let i = 0;
  const step = () => {
    if (fill.received < data.length) {
      const n = Math.min(sizes[i++ % sizes.length]!, data.length - fill.received);
      window.push(fill.received, data.subarray(fill.received, fill.received + n));
      fill.received += n;
      ends.push(fill.received);
    }
    if (fill.received === data.length && fill.written === data.length) {
      fill.verified = true;
      fill.state = 'done';
      window.clear();
      fill.emit('progress');
      return;
    }
    const onDisk = ends.length > lag ? ends[ends.length - 1 - lag]! : 0;
    fill.written = fill.received === data.length ? data.length : onDisk;
    window.trim(fill.written);
    fill.emit('progress');
    setImmediate(step);
  };
  setImmediate(step);
  return fill as unknown as BlobFill & { verified: boolean };
}

describe('FillSender following a running fill (window, disk, drains)', () => {
  it('any chunking, disk lag, window size, range and join time: exactly the range, the last byte only once verified', async () => {
    const data = randomBytes(600 * 1024 + 3);
    await fc.assert(fc.asyncProperty(
      fc.array(fc.integer({ min: 1024, max: 96 * 1024 }), { minLength: 1, maxLength: 6 }), fc.nat(6),
      fc.integer({ min: 1, max: 256 * 1024 }), fc.nat(data.length - 1), fc.nat(data.length - 1), fc.nat(24),
      async (sizes, lag, windowLimit, a, b, joinAfter) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const fill = runningFill(data, sizes, lag, windowLimit);
        // A client that joins late starts behind the window: it reads the file first, then catches up.
        for (let k = 0; k < joinAfter && fill.state === 'running'; k++) await new Promise((r) => fill.once('progress', r));
        const { out, body } = drainingSink();
        const sent = new FillSender(fill, start, end, () => undefined, () => undefined).sendTo(out);
        let timer: NodeJS.Timeout | undefined;
        const stuck = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`stuck at ${body().length} of ${end - start + 1} bytes`)), 5000); });
        await Promise.race([sent, stuck]).finally(() => clearTimeout(timer));
        await new Promise((resolve) => out.end(resolve));
        expect(body().equals(data.subarray(start, end + 1))).toBe(true);
        if (end === data.length - 1) expect(fill.verified).toBe(true);
      },
    ), { numRuns: 40 });
  });
});

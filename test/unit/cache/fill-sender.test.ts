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

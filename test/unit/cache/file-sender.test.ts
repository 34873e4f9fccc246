// FileSender over real sockets: the exact bytes of a range, in order, from buffers that go back to the pool; a
// client that hangs up releases the file; a file shorter than promised cuts the response instead of ending it.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUFFERS_PER_SEND, FileSender, SEND_BUFFER_BYTES, pooledSendBuffers } from '../../../src/cache/file-sender.js';
import { makeTmpDir, removeTmpDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/eventually.js';

// Many buffers' worth, and more than loopback's socket buffers hold, so a client that hangs up leaves some unsent.
const data = randomBytes(Math.max(5 * SEND_BUFFER_BYTES, 32 * 1024 * 1024) + 12345);
let dir: string;
let file: string;
beforeAll(() => {
  dir = makeTmpDir('ocimirror-sender-');
  file = join(dir, 'blob');
  writeFileSync(file, data);
});
afterAll(async () => { await removeTmpDir(dir); });

/** A server whose one response is sent by a FileSender over [start, end]; resolves what the client and sender saw. */
async function serve(start: number, end: number, client: (res: http.IncomingMessage, req: http.ClientRequest) => Promise<Buffer>) {
  let closed: number | undefined;
  let outcome: Promise<string> = Promise.resolve('not called');
  const server = http.createServer(async (_req, res) => {
    const sender = new FileSender(await open(file, 'r'), start, end, (sent) => { closed = sent; });
    res.writeHead(200, { 'content-length': String(end - start + 1) });
    outcome = sender.sendTo(res).then(() => { res.end(); return 'sent'; }, (err: Error) => err.message);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/' }, (res) => { client(res, req).then(resolve, reject); });
      req.on('error', () => resolve(Buffer.alloc(0)));
    });
    return { body, outcome: await outcome, closed: () => closed };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

const readAll = async (res: http.IncomingMessage) => {
  const chunks: Buffer[] = [];
  try { for await (const c of res) chunks.push(c as Buffer); } catch { /* cut: what arrived is returned */ }
  return Buffer.concat(chunks);
};

describe('FileSender', () => {
  it('sends exactly the range, in order, and returns its buffers to the pool once flushed', async () => {
    const start = 777;
    const end = data.length - 1001;
    const r = await serve(start, end, readAll);
    expect(r.outcome).toBe('sent');
    expect(r.body.equals(data.subarray(start, end + 1))).toBe(true);
    expect(r.closed()).toBe(end - start + 1);
    expect(pooledSendBuffers()).toBeGreaterThanOrEqual(1);
    const again = await serve(0, 99, readAll);
    expect(again.body.equals(data.subarray(0, 100))).toBe(true);
  });

  it('a client that hangs up part-way releases the file and its buffers; the sender reports the hang-up', async () => {
    const pooled = pooledSendBuffers();
    const r = await serve(0, data.length - 1, async (res, req) => {
      await new Promise((resolve) => res.once('data', resolve));
      req.destroy();
      return Buffer.alloc(0);
    });
    expect(r.outcome).toBe('client hung up');
    expect(r.closed()).toBeLessThan(data.length);
    // The writes still queued when the socket closed are called back with an error: their buffers come back.
    await waitFor('the sender\'s buffers back in the pool', () => pooledSendBuffers() >= Math.max(pooled, BUFFERS_PER_SEND));
  });

  it('a file shorter than the range cuts the response instead of ending it cleanly', async () => {
    const r = await serve(data.length - 10, data.length + 500, readAll);
    expect(r.outcome).toMatch(/file ended at byte/);
    expect(r.body.length).toBeLessThan(511);
  });
});

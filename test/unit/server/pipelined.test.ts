// A connection may have MAX_PIPELINED requests in flight: an honest pipelining client gets every answer in order;
// one that pipelines without reading is cut off instead of growing the process's memory.
import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RegistryService } from '../../../src/oci/service.js';
import { buildApp } from '../../../src/server/app.js';
import { MAX_PIPELINED } from '../../../src/server/pipelined.js';

let app: FastifyInstance | undefined;
let handled = 0;
afterEach(async () => { await app?.close(); app = undefined; });

async function listen(): Promise<number> {
  handled = 0;
  app = buildApp({ service: {} as RegistryService, via: '1.1 test', logger: pino({ level: 'silent' }), routing: { defaultRegistry: 'docker.io', resolve: (r: string) => r } });
  app.server.on('request', (_req, res) => res.once('finish', () => { handled++; }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as net.AddressInfo).port;
}

const GET = 'GET /v2/ HTTP/1.1\r\nHost: t\r\n\r\n';

describe('pipelined requests', () => {
  it('an honest pipelining client gets every answer, in order, on one connection', async () => {
    const port = await listen();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    const n = MAX_PIPELINED;
    socket.write(GET.repeat(n));
    await new Promise<void>((resolve) => { const check = () => { if ((text.match(/HTTP\/1\.1 200/g) ?? []).length === n) resolve(); else setTimeout(check, 10); }; check(); });
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  });

  it('a client pipelining without reading is cut off, its requests bounded', async () => {
    const port = await listen();
    // The server's end: a paused client would notice the close only when it next reads or writes.
    const closed = new Promise<void>((resolve) => app!.server.once('connection', (s: net.Socket) => s.once('close', () => resolve())));
    const socket = net.connect(port, '127.0.0.1');
    socket.pause();
    socket.on('error', () => undefined);
    const burst = Buffer.from(GET.repeat(2000));
    for (let i = 0; i < 50 && !socket.destroyed; i++) socket.write(burst);
    await closed;
    socket.destroy();
    // One read's worth may be parsed before the cut; never the 100000 requests sent.
    expect(handled).toBeLessThan(5000);
  }, 20_000);
});

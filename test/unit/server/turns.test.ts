// Registry requests take turns in the check phase (turns.ts): oldest first, at most TURN_BUDGET_MS of them per
// event-loop iteration, and /healthz, read in the poll phase, is answered before the registry requests that
// arrived with it.
import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RegistryService } from '../../../src/oci/service.js';
import { buildApp } from '../../../src/server/app.js';
import { healthPlugin } from '../../../src/server/health.js';
import { TURN_BUDGET_MS, Turns } from '../../../src/server/turns.js';

const busy = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end) { /* a request's CPU time */ } };

describe('Turns', () => {
  it('starts waiting requests oldest first, and every one of them', async () => {
    const turns = new Turns();
    const started: number[] = [];
    await Promise.all(Array.from({ length: 50 }, (_, i) => turns.wait().then(() => { started.push(i); })));
    expect(started).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(turns.waiting).toBe(0);
  });

  it('lets the loop come round once a turn has used its time, and carries on with the rest after', async () => {
    const turns = new Turns();
    const started: number[] = [];
    const perRequest = TURN_BUDGET_MS / 2 + 1;
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => turns.wait().then(() => { started.push(i); busy(perRequest); })));
    // Fires in the next iteration's timers phase: after the first turn, before the second.
    const atNextIteration = new Promise<number>((resolve) => setTimeout(() => resolve(started.length), 0));
    const seen = await atNextIteration;
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThanOrEqual(3);
    await all;
    expect(started).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });
});

describe('/healthz under load', () => {
  let app: FastifyInstance | undefined;
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await app?.close();
  });

  it('is answered before the registry requests that arrived in the same poll', async () => {
    const service = {
      async manifest() {
        busy(1);
        return { digest: `sha256:${'3'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, body: Buffer.from('{}'), endpoint: 'cache' };
      },
    } as unknown as RegistryService;
    app = buildApp({
      service, via: '1.1 test', logger: pino({ level: 'silent' }),
      routing: { defaultRegistry: 'docker.io', resolve: (r: string) => r },
      plugins: [healthPlugin({ configSource: 'test', cacheDir: '/nonexistent', mirrors: () => [] })],
    });
    const finished: string[] = [];
    app.server.on('request', (req, res) => res.once('finish', () => finished.push(req.url!.startsWith('/healthz') ? 'healthz' : 'v2')));
    let accepted = 0;
    app.server.on('connection', () => { accepted++; });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as net.AddressInfo).port;
    const connect = () => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s)).once('error', reject);
      s.on('data', () => undefined);
      sockets.push(s);
    });
    const registry = await Promise.all(Array.from({ length: 40 }, connect));
    const probe = await connect();
    while (accepted < 41) await new Promise((r) => setTimeout(r, 5));
    const answered = new Promise<void>((resolve) => app!.server.on('request', (_req, res) => res.once('finish', () => { if (finished.length === 41) resolve(); })));
    // All written before the server's next poll: over loopback each lands in its socket at once.
    for (const s of registry) s.write('GET /v2/library/alpine/manifests/latest HTTP/1.1\r\nHost: t\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n');
    probe.write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    await answered;
    expect(finished.filter((f) => f === 'v2')).toHaveLength(40);
    expect(finished[0]).toBe('healthz');
  });
});

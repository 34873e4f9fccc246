// Issue 8 rules 6 (server side), 9 and 10: slow-header clients, idle keep-alive connections and clients that stop
// reading are dropped after their timeouts; connections beyond server.maxConnections are refused; an absolute-form
// request target never reaches a route, with or without proxy auth; every response says nosniff.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, buildLargeLayerImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

interface RawExchange { data: string; closed: Promise<void> }

/** A raw connection: writes `text` (if any) and collects what comes back until the server closes it. */
function raw(port: number, text?: string): Promise<{ socket: net.Socket; ex: RawExchange }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const ex: RawExchange = { data: '', closed: new Promise((r) => socket.once('close', () => r())) };
    socket.on('data', (d) => { ex.data += d.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.once('connect', () => { if (text) socket.write(text); resolve({ socket, ex }); });
    socket.once('error', reject);
  });
}

/** Waits for the server to close a connection; a server that never does fails the test instead of hanging it. */
async function closedByServer(ex: RawExchange, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`${what}: the server kept the connection open`)), 15_000); });
  try { await Promise.race([ex.closed, guard]); } finally { clearTimeout(timer); }
}

const statusOf = (data: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);

let upstream: FaultUpstream;
let small: BuiltImage;
let large: BuiltImage;
let work: string;
let proxy: TestProxy;

beforeAll(async () => {
  work = makeTmpDir('ocimirror-server-limits-');
  upstream = await startFaultUpstream();
  small = await buildImage({ format: 'oci', label: 'server limits' });
  large = await buildLargeLayerImage({ format: 'oci', sizeBytes: 32 * 1024 * 1024, dir: work, compression: 'none', label: 'server limits' });
  upstream.add('library/small', '1.0', small);
  upstream.add('library/large', '1.0', large);
  proxy = await startTestProxy({
    server: { headersTimeout: '500ms', keepAliveTimeout: '300ms', idleTimeout: '1s' },
    mirrors: { 'docker.io': { endpoint: [upstream.url] } },
  });
  await pullThrough(proxy.url, 'library/large', '1.0', { ns: 'docker.io' });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([proxy?.close(), upstream?.close()]);
  await removeTmpDir(work);
});

describe('server timeouts and the connection cap (rule 6)', () => {
  it('a client that sends its headers too slowly gets 408 and is disconnected', async () => {
    const { socket, ex } = await raw(proxy.port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
    try { await closedByServer(ex, 'slow headers'); } finally { clearInterval(drip); }
    expect(statusOf(ex.data)).toBe(408);
  });

  it('an idle keep-alive connection is closed after server.keepAliveTimeout', async () => {
    const { ex } = await raw(proxy.port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n');
    await closedByServer(ex, 'idle keep-alive');
    expect(statusOf(ex.data)).toBe(200);
  });

  it('a client that stops reading a blob is dropped after server.idleTimeout; other clients are served meanwhile', async () => {
    const layer = large.layers[0]!.digest;
    const accepted = new Promise<net.Socket>((resolve) => proxy.proxy.app.server.once('connection', resolve));
    const { socket } = await raw(proxy.port, `GET /v2/library/large/blobs/${layer}?ns=docker.io HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause();
    // The proxy's side of this connection: a paused client sees nothing, so watch the server's socket close.
    const theirs = await accepted;
    let dropped = false;
    theirs.once('close', () => { dropped = true; });
    const deadline = Date.now() + 15_000;
    while (!dropped) {
      if (Date.now() > deadline) throw new Error('the proxy never dropped the client that stopped reading');
      expect((await pullThrough(proxy.url, 'library/small', '1.0', { ns: 'docker.io' })).digest).toBe(small.manifestDigest);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(theirs.bytesWritten).toBeLessThan(large.layers[0]!.size);
    socket.destroy();
  });

  it('connections beyond server.maxConnections are refused at accept', async () => {
    const capped = await startTestProxy({ server: { maxConnections: 4 }, mirrors: { 'docker.io': { endpoint: [upstream.url] } } });
    const held = [];
    try {
      for (let i = 0; i < 4; i++) {
        const c = await raw(capped.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        held.push(c);
        while (!c.ex.data.includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 10));
      }
      const extra = await raw(capped.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await closedByServer(extra.ex, 'connection over the cap');
      expect(extra.ex.data).toBe('');
      expect(held.every((c) => statusOf(c.ex.data) === 200)).toBe(true);
    } finally {
      for (const c of held) c.socket.destroy();
      await capped.close();
    }
  });
});

describe('absolute-form request targets (rule 9)', () => {
  const targets = ['/v2/', '/v2/library/small/manifests/1.0?ns=docker.io', '/healthz'];

  async function absolute(p: TestProxy, path: string): Promise<number> {
    const { ex } = await raw(p.port, `GET http://${p.host}${path} HTTP/1.1\r\nHost: ${p.host}\r\nConnection: close\r\n\r\n`);
    await closedByServer(ex, 'absolute form');
    return statusOf(ex.data);
  }

  it.each(targets)('GET http://host%s is 400 without proxy auth', async (path) => {
    expect(await absolute(proxy, path)).toBe(400);
  });

  it('and 400 with proxy auth, where it used to skip the password check', async () => {
    const dir = makeTmpDir('ocimirror-absolute-auth-');
    writeFileSync(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', '-C', '5', 'node', 'pw'], { encoding: 'utf8' }));
    const p = await startTestProxy({ server: { auth: { htpasswd: join(dir, 'htpasswd') } }, mirrors: { 'docker.io': { endpoint: [upstream.url] } } });
    try {
      for (const path of targets) expect(await absolute(p, path), path).toBe(400);
      expect((await fetchFrom(p.url, '/v2/')).status).toBe(401);
    } finally {
      await p.close();
      await removeTmpDir(dir);
    }
  });
});

describe('X-Content-Type-Options: nosniff on every response (rule 10)', () => {
  it.each([
    ['GET', '/v2/'], ['GET', '/v2/library/small/manifests/1.0?ns=docker.io'], ['HEAD', '/v2/library/small/manifests/1.0?ns=docker.io'],
    ['GET', '/v2/library/small/manifests/nope?ns=docker.io'], ['GET', '/v2/library/small/manifests/1.0?ns=constructor'],
    ['GET', '/v2/NOT_A_NAME/manifests/1.0'], ['GET', '/v2/library/small/tags/list?ns=docker.io'], ['GET', '/nowhere'],
    ['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/metrics'],
  ] as const)('%s %s', async (method, path) => {
    const res = await fetchFrom(proxy.url, path, { method });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('on blobs and on refused methods too', async () => {
    const res = await fetchFrom(proxy.url, `/v2/library/small/blobs/${small.config.digest}?ns=docker.io`);
    expect(res.status).toBe(200);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const { ex } = await raw(proxy.port, 'DELETE /v2/library/small/manifests/1.0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await closedByServer(ex, 'DELETE');
    expect(statusOf(ex.data)).toBe(405);
    expect(ex.data.toLowerCase()).toContain('x-content-type-options: nosniff');
  });
});

// The benchmark's clients. Timed transfers discard the bytes and only count them (undici with a counting handler,
// or curl -o /dev/null), so the server, not the client, is the bottleneck; a separate untimed pass hashes the
// body once per server and path to prove the bytes are right. Any non-200 or wrong length is an error.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';

export type ClientKind = 'undici' | 'curl';
/** One GET of `url`, which must be 200 with exactly `size` bytes; resolves to its wall time in ms. */
export type Get = (url: string, size: number) => Promise<number>;

// Its own pool: no connection limit per origin, so 8 concurrent clients really are 8 connections.
const agent = new Agent({ keepAliveTimeout: 10_000, headersTimeout: 120_000, bodyTimeout: 120_000 });

export function undiciGet(url: string, size: number): Promise<number> {
  const { origin, pathname, search } = new URL(url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let status = 0;
    let bytes = 0;
    agent.dispatch({ origin, path: pathname + search, method: 'GET', headers: { 'accept-encoding': 'identity' } }, {
      onRequestStart() { /* present: undici tells the new handler API from the old by it */ },
      onResponseStart(_c, statusCode) { status = statusCode; },
      onResponseData(_c, chunk) { bytes += chunk.length; },
      onResponseEnd() {
        const ms = performance.now() - started;
        if (status === 200 && bytes === size) resolve(ms);
        else reject(new Error(`GET ${url}: expected 200 with ${size} bytes, got ${status} with ${bytes} bytes`));
      },
      onResponseError(_c, err) { reject(new Error(`GET ${url}: ${err.message}`, { cause: err })); },
    });
  });
}

/** curl's own time_total: a process start (several ms) is no part of the transfer. */
export function curlGet(url: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const curl = spawn('curl', ['-sS', '-o', '/dev/null', '-H', 'accept-encoding: identity', '-w', '%{http_code} %{size_download} %{time_total}', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    curl.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    curl.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    curl.once('error', reject);
    curl.once('close', (code) => {
      const [status, bytes, seconds] = out.trim().split(' ');
      if (code === 0 && status === '200' && bytes === String(size) && Number(seconds) > 0) resolve(Number(seconds) * 1000);
      else reject(new Error(`curl ${url}: expected 200 with ${size} bytes, got exit ${code}: ${out.trim()}`));
    });
  });
}

export const clients: Record<ClientKind, Get> = { undici: undiciGet, curl: curlGet };

/** The untimed check: GETs `url` and hashes the body; throws on a non-200, a wrong length or a wrong digest. */
export async function verifiedGet(url: string, digest: string, size: number): Promise<void> {
  const res = await request(url, { dispatcher: agent, headers: { 'accept-encoding': 'identity' } }).catch((err: Error) => {
    throw new Error(`GET ${url}: ${err.message}`, { cause: err });
  });
  if (res.statusCode !== 200) throw new Error(`GET ${url}: expected 200, got ${res.statusCode} ${(await res.body.text()).slice(0, 300)}`);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) { hash.update(chunk); bytes += chunk.length; }
  const actual = `sha256:${hash.digest('hex')}`;
  if (bytes !== size || actual !== digest) throw new Error(`GET ${url}: expected ${size} bytes with ${digest}, got ${bytes} bytes with ${actual}`);
}

/** `clients` concurrent loops, each GETting `url` `rounds` times in a row; wall time from first start to last end. */
export async function fanOut(get: (url: string) => Promise<unknown>, url: string, clients: number, rounds = 1): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let r = 0; r < rounds; r++) await get(url);
  }));
  return performance.now() - started;
}

export async function closeClients(): Promise<void> {
  await agent.close();
}

// The benchmark's client: one GET, the body streamed into a SHA-256 sink, the digest and length checked every time.
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';

export interface Transfer { bytes: number; ms: number }

export class DigestMismatch extends Error {}

// Its own pool: no connection limit per origin, so 8 concurrent clients really are 8 connections.
const agent = new Agent({ keepAliveTimeout: 10_000, headersTimeout: 120_000, bodyTimeout: 120_000 });

/** GETs `url` and hashes the body as it arrives; throws on a non-200, a short body or a wrong digest. */
export async function fetchBlob(url: string, digest: string, size: number): Promise<Transfer> {
  try {
    return await fetchOnce(url, digest, size);
  } catch (err) {
    if (err instanceof DigestMismatch) throw err;
    throw new Error(`GET ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function fetchOnce(url: string, digest: string, size: number): Promise<Transfer> {
  const started = performance.now();
  const res = await request(url, { dispatcher: agent, headers: { 'accept-encoding': 'identity' } });
  if (res.statusCode !== 200) {
    const text = (await res.body.text()).slice(0, 500);
    throw new Error(`GET ${url}: expected 200, got ${res.statusCode} ${text}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const ms = performance.now() - started;
  const actual = `sha256:${hash.digest('hex')}`;
  if (bytes !== size || actual !== digest) {
    throw new DigestMismatch(`GET ${url}: expected ${size} bytes with ${digest}, got ${bytes} bytes with ${actual}`);
  }
  return { bytes, ms };
}

/** `clients` concurrent loops, each fetching the blob `rounds` times in a row; wall time from first start to last end. */
export async function fetchConcurrently(url: string, digest: string, size: number, clients: number, rounds = 1): Promise<{ wallMs: number; perClient: Transfer[] }> {
  const started = performance.now();
  const perClient = await Promise.all(Array.from({ length: clients }, async () => {
    const total: Transfer = { bytes: 0, ms: 0 };
    for (let r = 0; r < rounds; r++) {
      const t = await fetchBlob(url, digest, size);
      total.bytes += t.bytes;
      total.ms += t.ms;
    }
    return total;
  }));
  return { wallMs: performance.now() - started, perClient };
}

export async function closeClients(): Promise<void> {
  await agent.close();
}

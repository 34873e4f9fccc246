// The soak's client kinds. Well-behaved ones (tag, big, cold) count every 5xx and connection error against the
// proxy; misbehaving ones (stall: stops reading a 200 MiB blob; drop: hangs up mid-body) only exercise it.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import type { BuiltImage } from '../helpers/images.js';

export interface Tally {
  requests: number;
  errors5xx: number;
  connectionErrors: number;
  /** Statuses that are neither 2xx nor 5xx (e.g. 404, 429): reported, not a goal. */
  other: number;
  bytes: number;
  firstError?: string;
}

export const newTally = (): Tally => ({ requests: 0, errors5xx: 0, connectionErrors: 0, other: 0, bytes: 0 });

export interface SoakTarget {
  port: number;
  /** The warm image (small blobs, tags) and the one with the 200 MiB layer. */
  small: BuiltImage;
  big: BuiltImage;
  /** Repositories pushed upstream but never pulled: one cold pull each. */
  cold: string[];
}

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';
const Q = '?ns=docker.io';

/** One request on a keep-alive connection, its body read and counted. */
async function call(client: Client, tally: Tally, method: 'GET' | 'HEAD', path: string): Promise<Buffer | undefined> {
  tally.requests++;
  try {
    // reset: false keeps the connection after a HEAD too (undici closes it by default; containerd does not).
    const res = await client.request({ method, path, headers: { accept: ACCEPT }, headersTimeout: 120_000, bodyTimeout: 120_000, reset: false });
    const chunks: Buffer[] = [];
    let keep = path.includes('/manifests/');
    for await (const chunk of res.body) {
      tally.bytes += (chunk as Buffer).length;
      if (keep) chunks.push(chunk as Buffer);
      keep &&= chunks.length < 64;
    }
    if (res.statusCode >= 500) { tally.errors5xx++; tally.firstError ??= `${method} ${path}: ${res.statusCode}`; }
    else if (res.statusCode >= 300) tally.other++;
    return Buffer.concat(chunks);
  } catch (err) {
    tally.connectionErrors++;
    tally.firstError ??= `${method} ${path}: ${(err as Error).message}`;
    return undefined;
  }
}

/** Tag HEAD and GET, manifest by digest, the small blobs: what a node resolving an image does, in a loop. */
export async function tagClient(t: SoakTarget, tally: Tally, until: () => boolean): Promise<void> {
  const client = new Client(`http://127.0.0.1:${t.port}`, { keepAliveTimeout: 60_000, pipelining: 1 });
  const repo = '/v2/library/soak-small';
  try {
    while (!until()) {
      await call(client, tally, 'HEAD', `${repo}/manifests/1.0${Q}`);
      await call(client, tally, 'GET', `${repo}/manifests/1.0${Q}`);
      await call(client, tally, 'GET', `${repo}/manifests/${t.small.manifestDigest}${Q}`);
      for (const blob of t.small.blobs) await call(client, tally, 'GET', `${repo}/blobs/${blob.digest}${Q}`);
    }
  } finally {
    await client.close();
  }
}

/** The 200 MiB layer, read whole, again and again. */
export async function bigClient(t: SoakTarget, tally: Tally, until: () => boolean): Promise<void> {
  const client = new Client(`http://127.0.0.1:${t.port}`, { keepAliveTimeout: 60_000, pipelining: 1 });
  try {
    while (!until()) await call(client, tally, 'GET', `/v2/library/soak-big/blobs/${t.big.layers[0]!.digest}${Q}`);
  } finally {
    await client.close();
  }
}

/** Each cold repository once: HEAD the tag, GET the manifest by digest, then its blobs. */
export async function coldClient(t: SoakTarget, tally: Tally, next: () => string | undefined, until: () => boolean): Promise<number> {
  const client = new Client(`http://127.0.0.1:${t.port}`, { keepAliveTimeout: 60_000, pipelining: 1 });
  let pulls = 0;
  try {
    for (let repo = next(); repo && !until(); repo = next()) {
      const manifest = await call(client, tally, 'GET', `/v2/${repo}/manifests/1.0${Q}`);
      if (!manifest || manifest.length === 0) continue;
      const doc = JSON.parse(manifest.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
      for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) await call(client, tally, 'GET', `/v2/${repo}/blobs/${d}${Q}`);
      pulls++;
    }
  } finally {
    await client.close();
  }
  return pulls;
}

/**
 * A raw GET of the big layer that reads `readBytes` and then hangs up (drop), or stops reading (stall) and holds the
 * connection for `holdMs` (longer than server.idleTimeout) or until the run ends; a paused socket never sees the
 * proxy's close, so the client ends it itself.
 */
function rawBigGet(t: SoakTarget, readBytes: number, then: 'stall' | 'drop', until: () => boolean, holdMs = 0): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(t.port, '127.0.0.1');
    let got = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => { clearInterval(timer); socket.destroy(); resolve(); };
    socket.on('error', finish);
    socket.once('close', finish);
    socket.once('connect', () => socket.write(`GET /v2/library/soak-big/blobs/${t.big.layers[0]!.digest}${Q} HTTP/1.1\r\nHost: soak\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got < readBytes || timer) return;
      if (then === 'drop') return finish();
      socket.pause();
      const end = Date.now() + holdMs;
      timer = setInterval(() => { if (until() || Date.now() > end) finish(); }, 200);
    });
  });
}

/** Stops reading after 1 MiB, holds the connection past server.idleTimeout, and does it again. */
export async function stallClient(t: SoakTarget, until: () => boolean, holdMs: number): Promise<number> {
  let n = 0;
  while (!until()) { await rawBigGet(t, 1 << 20, 'stall', until, holdMs); n++; }
  return n;
}

/** Hangs up after 1–50 MiB, again and again. */
export async function dropClient(t: SoakTarget, until: () => boolean): Promise<number> {
  let n = 0;
  while (!until()) { await rawBigGet(t, (1 + Math.floor(Math.random() * 50)) << 20, 'drop', until); n++; }
  return n;
}

/** GET /healthz every 50 ms on its own connection; returns each latency in ms. */
/** Probes /healthz from a process of its own (health-probe.ts) for `seconds`; resolves its latencies. */
export function healthSampler(port: number, seconds: number): { ready: Promise<void>; done: Promise<{ latencies: number[]; failures: number }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./health-probe.ts', import.meta.url)), String(port), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let signalReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => { signalReady = r; });
  child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); if (out.startsWith('ready\n')) signalReady(); });
  const done = new Promise<{ latencies: number[]; failures: number }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      signalReady();
      try { resolve(JSON.parse(out.replace(/^ready\n/, '')) as { latencies: number[]; failures: number }); } catch { reject(new Error(`health probe exited with ${code}: ${out}`)); }
    });
  });
  return { ready, done };
}

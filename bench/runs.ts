// One benchmark run: fresh ocimirror and Distribution proxy processes, the compared servers interleaved within
// each case (rotated from run to run) so that load from elsewhere on the machine hits them alike.
import { request } from 'undici';
import type { Distribution } from '../test/helpers/distribution.js';
import { ab } from './ab.js';
import { fanOut, verifiedGet, type Get } from './clients.js';
import { Results, upstreamBlobGets, type ServerKey } from './results.js';
import { startDistributionProxy, startOcimirror, startReferences, type Server } from './servers.js';

export interface Blob { digest: string; size: number }

export interface RunContext {
  upstream: Distribution;
  /** The layer as a file, for the Node static server. */
  layerFile: string;
  repo: string;
  layer: Blob;
  /** A second layer of the same size, each process's first request (the fresh-process cold case). */
  firstLayer: Blob;
  /** The image config: a blob of a few hundred bytes for the small-request case. */
  small: Blob;
  tag: string;
  manifestDigest: string;
  manifestType: string;
  nodeArgs: string[];
  clients: number;
  warmGets: number;
  abSeconds: number;
  say(text: string): void;
}

/** The timed client, or (verification pass) one that hashes every body and returns 0. */
export type Transfer = { kind: 'timed'; get: Get } | { kind: 'verify' };

export const rotate = <T>(list: T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]!);

export const startMirror = (ctx: RunContext) => startOcimirror({ registry: ctx.upstream.host, endpoint: ctx.upstream.url, nodeArgs: ctx.nodeArgs });
export const startPeer = (ctx: RunContext) => startDistributionProxy(ctx.upstream.url);

export async function withServers<T>(starts: (() => Promise<Server>)[], fn: (servers: Server[]) => Promise<T>): Promise<T> {
  const servers: Server[] = [];
  try {
    for (const start of starts) servers.push(await start());
    const result = await fn(servers);
    for (const s of servers) s.child.assertAlive();
    return result;
  } finally {
    for (const s of servers) await s.stop();
  }
}

const blobUrl = (ctx: RunContext, server: Server, blob: Blob) => `${server.url}/v2/${ctx.repo}/blobs/${blob.digest}`;

/** One GET of `layer` from `server`; records wall time, the server's CPU until it is idle again, upstream GETs. */
async function transferOnce(ctx: RunContext, results: Results, kase: string, key: ServerKey, server: Server, transfer: Transfer, layer = ctx.layer): Promise<void> {
  await upstreamBlobGets(ctx.upstream);
  const cpuBefore = server.child.cpuSeconds();
  const url = blobUrl(ctx, server, layer);
  const ms = transfer.kind === 'timed' ? await transfer.get(url, layer.size) : (await verifiedGet(url, layer.digest, layer.size), 0);
  const cpu = (await server.settle(layer.digest)) - cpuBefore;
  const gets = await upstreamBlobGets(ctx.upstream);
  if (transfer.kind === 'verify') return;
  results.add(kase, key, 'ms', ms);
  results.add(kase, key, 'bytes', layer.size);
  results.add(kase, key, 'cpu', cpu);
  results.add(kase, key, 'gets', gets);
}

/**
 * Cold and warm single-client GETs, then the small requests, on a fresh ocimirror, Distribution proxy and Node
 * reference. Cold twice: each process's very first request (another layer: start-up, JIT warm-up and first heap
 * sizing included), then the measured layer on the same process, as a long-running proxy meets a new layer.
 */
export async function singleClientRun(ctx: RunContext, results: Results, run: number, transfer: Transfer): Promise<void> {
  const refs = await startReferences(ctx.upstream.url, ctx.layerFile);
  try {
    await withServers([() => startMirror(ctx), () => startPeer(ctx)], async ([mirror, peer]) => {
      const cold = rotate<[ServerKey, Server]>([['ocimirror', mirror!], ['distribution', peer!], ['node', refs.forward], ['pipe', refs.pipe], ['relay', refs.relay]], run);
      for (const [key, server] of cold) await transferOnce(ctx, results, 'cold-first', key, server, transfer, ctx.firstLayer);
      for (const [key, server] of cold) await transferOnce(ctx, results, 'cold', key, server, transfer);
      const warm = rotate<[ServerKey, Server]>([['ocimirror', mirror!], ['distribution', peer!], ['node', refs.static]], run);
      for (let i = 0; i < (transfer.kind === 'verify' ? 1 : ctx.warmGets); i++) {
        for (const [key, server] of warm) await transferOnce(ctx, results, 'warm', key, server, transfer);
      }
      await smallRequests(ctx, results, run, transfer, mirror!, peer!);
    });
  } finally {
    await refs.stop();
  }
}

async function smallRequests(ctx: RunContext, results: Results, run: number, transfer: Transfer, mirror: Server, peer: Server): Promise<void> {
  const servers = rotate<[ServerKey, Server]>([['ocimirror', mirror], ['distribution', peer]], run);
  for (const [, server] of servers) {
    // Fills the tag and the small blob into the cache first (and proves both answer correctly).
    await verifiedGet(blobUrl(ctx, server, ctx.small), ctx.small.digest, ctx.small.size);
    await checkTagHead(ctx, server);
  }
  if (transfer.kind === 'verify') return;
  for (const [key, server] of servers) {
    const tagUrl = `${server.url}/v2/${ctx.repo}/manifests/${ctx.tag}`;
    results.add('tag-head', key, 'rps', await ab({ url: tagUrl, head: true, accept: ctx.manifestType, seconds: ctx.abSeconds, concurrency: 50 }));
    server.child.assertAlive();
  }
  for (const [key, server] of servers) {
    results.add('small-get', key, 'rps', await ab({ url: blobUrl(ctx, server, ctx.small), seconds: ctx.abSeconds, concurrency: 50 }));
    server.child.assertAlive();
  }
}

async function checkTagHead(ctx: RunContext, server: Server): Promise<void> {
  const res = await request(`${server.url}/v2/${ctx.repo}/manifests/${ctx.tag}`, { method: 'HEAD', headers: { accept: ctx.manifestType } });
  await res.body.dump();
  const digest = res.headers['docker-content-digest'];
  if (res.statusCode !== 200 || digest !== ctx.manifestDigest) {
    throw new Error(`HEAD ${server.label} manifests/${ctx.tag}: expected 200 with ${ctx.manifestDigest}, got ${res.statusCode} with ${String(digest)}`);
  }
}

export interface ColdOptions { kase: string; clients: number; /** The upstream as ocimirror and Distribution see it (a rate-limited link). */ endpointUrl?: string }

/** `clients` concurrent cold clients on a fresh ocimirror, then on a fresh Distribution proxy (order rotated). */
export async function concurrentColdRun(ctx: RunContext, results: Results, run: number, transfer: Transfer, opts: ColdOptions): Promise<void> {
  const { kase, clients } = opts;
  const upstreamUrl = opts.endpointUrl ?? ctx.upstream.url;
  const starts: [ServerKey, () => Promise<Server>][] = rotate([
    ['ocimirror', () => startOcimirror({ registry: ctx.upstream.host, endpoint: upstreamUrl, nodeArgs: ctx.nodeArgs })],
    ['distribution', () => startDistributionProxy(upstreamUrl)],
  ], run);
  for (const [key, start] of starts) {
    await withServers([start], async ([server]) => {
      await upstreamBlobGets(ctx.upstream);
      const cpuBefore = server!.child.cpuSeconds();
      const url = blobUrl(ctx, server!, ctx.layer);
      const get = transfer.kind === 'timed' ? (u: string) => transfer.get(u, ctx.layer.size) : (u: string) => verifiedGet(u, ctx.layer.digest, ctx.layer.size);
      const ms = await fanOut(get, url, clients);
      const cpu = (await server!.settle(ctx.layer.digest)) - cpuBefore;
      const gets = await upstreamBlobGets(ctx.upstream);
      if (transfer.kind === 'verify') return;
      results.add(kase, key, 'ms', ms);
      results.add(kase, key, 'bytes', clients * ctx.layer.size);
      results.add(kase, key, 'cpu', cpu);
      results.add(kase, key, 'gets', gets);
    });
  }
}

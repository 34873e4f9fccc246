// An in-process ocimirror for tests: config from a YAML string or an object, a fresh temp cache dir, listening on
// 127.0.0.1:0, with the production logger (same redaction) writing into memory so tests can assert on log lines.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import YAML from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { normaliseEndpoint, isLocalhost } from '../../src/config/endpoints.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/server/logger.js';
import { startProxy, type RunningProxy } from '../../src/server/start.js';
import { makeTmpDir, removeTmpDir } from './tmp.js';
import { testNetwork, type TestNetwork, type TestNetworkOptions } from './test-network.js';

export interface LogLine { level: number; msg: string; [key: string]: unknown }

export interface TestProxy {
  readonly proxy: RunningProxy;
  readonly config: Config;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** 127.0.0.1:PORT */
  readonly host: string;
  readonly port: number;
  readonly cacheDir: string;
  /** The proxy's resolver and loopback guard (its lookups, for "no DNS query was made" checks). */
  readonly network: TestNetwork;
  /** Every log line so far, parsed. */
  logs(): LogLine[];
  /** The raw log text (for "never contains the password" checks). */
  logText(): string;
  /** The access-log lines ("request"), optionally only those whose URL matches. */
  requests(url?: RegExp): LogLine[];
  /** warn-level lines with this message. */
  warnings(msg: RegExp): LogLine[];
  /** Stops ocimirror and starts it again on the same port and cache directory (what a restarted process sees). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A clock tests move by hand (cache freshness), instead of sleeping past a TTL. */
export interface TestClock { now(): number; advance(ms: number): void }

export function testClock(start = Date.now()): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

export type ProxyConfigInput = string | Record<string, unknown>;

/**
 * Refuses a config whose mirrors could make the proxy contact anything but loopback (never docker.io). `guarded`:
 * the proxy runs in this process with testNetwork(), which refuses every other address, so "*" is safe.
 */
export function assertLoopbackConfig(config: Config, opts: { guarded?: boolean } = {}): void {
  if (config.upstream.appendDefaultEndpoint) throw new Error('test proxy: appendDefaultEndpoint would add a registry\'s real endpoint');
  const store = config.cache.store;
  for (const [what, url] of [['cache.store.endpoint', store.type === 's3' ? store.endpoint : 'http://127.0.0.1'], ['cluster.redis', config.cluster?.redis], ['cluster.advertiseUrl', config.cluster?.advertiseUrl]] as const) {
    if (url !== undefined && !isLocalhost(new URL(url).hostname)) throw new Error(`test proxy: ${what} ${url} is not on loopback`);
  }
  if (store.type === 's3' && store.endpoint === undefined) throw new Error('test proxy: an S3 store without endpoint would be AWS');
  for (const [registry, mirror] of Object.entries(config.mirrors)) {
    if (registry === '*' && opts.guarded) continue;
    if (registry === '*') throw new Error('test proxy: a "*" mirror would send unknown registries to their real endpoints');
    if (mirror.endpoint.length === 0) throw new Error(`test proxy: mirror ${registry} has no endpoints and would use the real registry`);
    for (const raw of mirror.endpoint) {
      const hostname = new URL(normaliseEndpoint(raw).origin).hostname;
      if (!isLocalhost(hostname)) throw new Error(`test proxy: endpoint ${raw} of ${registry} is not on loopback`);
    }
  }
}

export async function startTestProxy(input: ProxyConfigInput, opts: { level?: string; clock?: TestClock; network?: TestNetworkOptions; env?: Record<string, string> } = {}): Promise<TestProxy> {
  const doc = (typeof input === 'string' ? (YAML.parse(input) as Record<string, unknown> | null) : structuredClone(input)) ?? {};
  const cacheDir = makeTmpDir('ocimirror-proxy-cache-');
  const server = (doc.server ?? {}) as Record<string, unknown>;
  doc.server = { ...server, listen: server.listen ?? '127.0.0.1:0' };
  const cache = (doc.cache ?? {}) as Record<string, unknown>;
  doc.cache = { ...cache, dir: cacheDir };
  const parseOpts = opts.env ? { env: { ...process.env, ...opts.env } } : {};
  const config = parseConfig('test-proxy.yaml', YAML.stringify(doc), parseOpts);
  assertLoopbackConfig(config, { guarded: true });
  const network = testNetwork(opts.network);

  const lines: string[] = [];
  let tail = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const parts = (tail + chunk.toString('utf8')).split('\n');
      tail = parts.pop() ?? '';
      lines.push(...parts.filter((l) => l.length > 0));
      done();
    },
  });
  const logger = createLogger(opts.level ?? 'info', sink);
  const start = (c: Config) => startProxy(c, { logger, network, ...(opts.clock ? { now: opts.clock.now } : {}) });
  let proxy = await start(config);
  const port = proxy.port;
  const parsed = (): LogLine[] => lines.map((l) => JSON.parse(l) as LogLine);
  return {
    get proxy() { return proxy; },
    config, url: proxy.url, host: `127.0.0.1:${port}`, port, cacheDir, network,
    logs: parsed,
    logText: () => lines.join('\n'),
    requests: (url) => parsed().filter((l) => l.msg === 'request' && (!url || url.test(String(l.url)))),
    warnings: (msg) => parsed().filter((l) => l.level === 40 && msg.test(l.msg)),
    async restart() {
      await proxy.close();
      proxy = await start(parseConfig('test-proxy.yaml', YAML.stringify({ ...doc, server: { ...(doc.server as object), listen: `127.0.0.1:${port}` } }), parseOpts));
    },
    async close() {
      await proxy.close();
      await removeTmpDir(cacheDir);
    },
  };
}

export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', '*/*',
].join(', ');

export interface FetchedResponse { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; ms: number }

/** One request to the proxy with the body read whole (tests only fetch small things this way). */
export async function fetchFrom(baseUrl: string, path: string, opts: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; dispatcher?: Dispatcher } = {}): Promise<FetchedResponse> {
  const started = performance.now();
  const res = await request(new URL(path, baseUrl), {
    method: opts.method ?? 'GET',
    headers: { accept: MANIFEST_ACCEPT, ...opts.headers },
    headersTimeout: 60_000, bodyTimeout: 60_000,
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - started };
}

/** The OCI error body of a response, parsed. */
export function ociErrors(res: FetchedResponse): { code: string; message: string; detail?: unknown }[] {
  return (JSON.parse(res.body.toString('utf8')) as { errors: { code: string; message: string; detail?: unknown }[] }).errors;
}

export interface PullResult {
  /** Manifest digest the tag resolved to (from HEAD, checked against the GET bytes). */
  digest: string;
  /** Digests of every blob fetched, each checked against the bytes that arrived. */
  blobs: string[];
  ms: number;
}

/**
 * Pulls like containerd does: HEAD the tag, GET the manifest by digest, then every child manifest of an index and
 * every blob; each body is hashed and compared with its digest. `ns` adds ?ns= (URL-encoded) to every request.
 */
export async function pullThrough(baseUrl: string, name: string, tag: string, opts: { ns?: string } = {}): Promise<PullResult> {
  const started = performance.now();
  const q = opts.ns ? `?ns=${encodeURIComponent(opts.ns)}` : '';
  const expectOk = (res: FetchedResponse, what: string) => {
    if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 500)}`);
  };
  const head = await fetchFrom(baseUrl, `/v2/${name}/manifests/${tag}${q}`, { method: 'HEAD' });
  expectOk(head, `HEAD ${name}:${tag}`);
  const digest = String(head.headers['docker-content-digest']);
  const blobs: string[] = [];
  const manifests = [digest];
  while (manifests.length > 0) {
    const d = manifests.shift() as string;
    const res = await fetchFrom(baseUrl, `/v2/${name}/manifests/${d}${q}`);
    expectOk(res, `GET manifest ${d}`);
    if (sha256Of(res.body) !== d) throw new Error(`manifest ${d}: the proxy sent bytes with digest ${sha256Of(res.body)}`);
    const m = JSON.parse(res.body.toString('utf8')) as { manifests?: { digest: string }[]; config?: { digest: string }; layers?: { digest: string }[] };
    if (m.manifests) manifests.push(...m.manifests.map((c) => c.digest));
    for (const b of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
      const blob = await fetchFrom(baseUrl, `/v2/${name}/blobs/${b.digest}${q}`);
      expectOk(blob, `GET blob ${b.digest}`);
      if (sha256Of(blob.body) !== b.digest) throw new Error(`blob ${b.digest}: the proxy sent bytes with digest ${sha256Of(blob.body)}`);
      blobs.push(b.digest);
    }
  }
  return { digest, blobs, ms: performance.now() - started };
}

function sha256Of(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

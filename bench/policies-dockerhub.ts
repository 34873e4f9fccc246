// The Docker Hub example of README's policies section, measured rather than estimated: 100 nodes resolve
// nginx:1.25.3 and nginx:latest containerd-style (HEAD the tag; GET the index, the node's platform manifest, config
// and layers only when the node does not hold them yet) at every pod start, one pod of each image per node every
// 5 minutes (imagePullPolicy: Always, as the AlwaysPullImages admission plugin enforces), for one hour of test-clock
// time; nginx:latest moves once, at minute 30. A real Distribution stands in for Docker Hub and its access log
// counts the manifest requests that reach it: (a) nodes straight at the registry, (b) through ocimirror with its
// defaults, (c) through ocimirror with the README's policies.
//   node --import tsx bench/policies-dockerhub.ts [--nodes 100] [--every 5m] [--hours 1]
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/config/units.js';
import { startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { buildIndex, type BuiltIndex } from '../test/helpers/images.js';
import { fetchFrom, MANIFEST_ACCEPT, startTestProxy, testClock, type TestClock } from '../test/helpers/proxy.js';
import { pushIndex } from '../test/helpers/push.js';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '100' }, every: { type: 'string', default: '5m' }, hours: { type: 'string', default: '1' } } });
const NODES = Number(values.nodes);
const EVERY_MS = parseDuration(values.every) ?? 300_000;
const HOUR_MS = 3_600_000 * Number(values.hours);
const TAGS = ['1.25.3', 'latest'];
const PLATFORMS = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }];

const POLICIES = {
  policies: [{
    match: { registry: 'docker.io', repository: 'library/*' },
    tagTtl: '10m', immutableTags: '^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$', staleIfError: '7d', negativeTtl: '30s',
  }],
};

interface Counts { head: number; get: number; blobGets: number; nodesOnNewLatest: number }

/** One node's content store: what it already holds is never fetched again (containerd's content store). */
class Node {
  private readonly held = new Set<string>();
  latest: string | undefined;
  constructor(private readonly base: string, private readonly ns: string) {}

  async pull(tag: string): Promise<void> {
    const head = await this.get(`manifests/${tag}`, 'HEAD');
    const digest = String(head.headers['docker-content-digest']);
    if (tag === 'latest') this.latest = digest;
    if (this.held.has(digest)) return;
    const index = JSON.parse((await this.get(`manifests/${digest}`)).body.toString('utf8')) as { manifests: { digest: string; platform: { architecture: string } }[] };
    const mine = index.manifests.find((m) => m.platform.architecture === 'amd64');
    if (!mine) throw new Error(`no amd64 manifest in ${digest}`);
    if (!this.held.has(mine.digest)) {
      const image = JSON.parse((await this.get(`manifests/${mine.digest}`)).body.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
      for (const blob of [image.config, ...image.layers]) {
        if (!this.held.has(blob.digest)) await this.get(`blobs/${blob.digest}`);
        this.held.add(blob.digest);
      }
      this.held.add(mine.digest);
    }
    this.held.add(digest);
  }

  private async get(path: string, method: 'GET' | 'HEAD' = 'GET') {
    const res = await fetchFrom(this.base, `/v2/library/nginx/${path}${this.ns}`, { method, headers: { accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) throw new Error(`${method} ${path}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
    return res;
  }
}

/** Every pod start of the hour, in time order: node i starts its pods at i * EVERY/NODES past each period. */
function schedule(): { at: number; node: number; tag: string }[] {
  const events = [];
  for (let node = 0; node < NODES; node++) {
    for (let at = Math.floor((node * EVERY_MS) / NODES); at < HOUR_MS; at += EVERY_MS) {
      for (const tag of TAGS) events.push({ at, node, tag });
    }
  }
  return events.sort((a, b) => a.at - b.at || a.node - b.node);
}

async function run(dist: Distribution, images: { v1: BuiltIndex; latest: BuiltIndex; moved: BuiltIndex }, via: 'direct' | Record<string, unknown>): Promise<Counts> {
  await pushIndex(dist.url, 'library/nginx', '1.25.3', images.v1);
  await pushIndex(dist.url, 'library/nginx', 'latest', images.latest);
  const clock: TestClock = testClock();
  const proxy = via === 'direct' ? undefined : await startTestProxy({ mirrors: { 'docker.io': { endpoint: [dist.url] } }, ...via }, { clock, level: 'warn' });
  try {
    const base = proxy?.url ?? dist.url;
    const nodes = Array.from({ length: NODES }, () => new Node(base, proxy ? '?ns=docker.io' : ''));
    await dist.flushLog();
    dist.resetLog();
    let now = 0;
    let moved = false;
    for (const e of schedule()) {
      if (!moved && e.at >= HOUR_MS / 2) {
        moved = true;
        await pushIndex(dist.url, 'library/nginx', 'latest', images.moved);
      }
      clock.advance(e.at - now);
      now = e.at;
      await nodes[e.node]!.pull(e.tag);
    }
    await dist.flushLog();
    const log = dist.accessLog();
    const manifests = log.filter((l) => l.path.startsWith('/v2/library/nginx/manifests/'));
    return {
      head: manifests.filter((l) => l.method === 'HEAD').length,
      get: manifests.filter((l) => l.method === 'GET').length,
      blobGets: log.filter((l) => l.method === 'GET' && l.path.startsWith('/v2/library/nginx/blobs/')).length,
      nodesOnNewLatest: nodes.filter((n) => n.latest === images.moved.manifestDigest).length,
    };
  } finally {
    await proxy?.close();
  }
}

async function main(): Promise<void> {
  const images = {
    v1: await buildIndex({ format: 'oci', platforms: PLATFORMS, label: 'nginx 1.25.3' }),
    latest: await buildIndex({ format: 'oci', platforms: PLATFORMS, label: 'nginx latest' }),
    moved: await buildIndex({ format: 'oci', platforms: PLATFORMS, label: 'nginx latest, moved' }),
  };
  const rows: [string, Counts][] = [];
  for (const [name, via] of [
    ['nodes straight at the registry', 'direct'],
    ['through ocimirror, defaults (cache.tagTtl 60s)', {}],
    ['through ocimirror, README policies', POLICIES],
  ] as const) {
    // A fresh registry per scenario, so every run starts from the same state and log.
    const dist = await startDistribution();
    try {
      rows.push([name, await run(dist, images, via)]);
    } finally {
      await dist.close();
    }
  }
  const pulls = schedule().length;
  console.log(`${NODES} nodes, nginx:1.25.3 + nginx:latest every ${values.every} per node, ${values.hours} h of test-clock time (${pulls} tag resolutions); latest moves at ${HOUR_MS / 120_000} min`);
  const header = ['scenario', 'manifest HEAD', 'manifest GET', 'manifest total', 'blob GET', `nodes on moved latest`];
  const cells = rows.map(([name, c]) => [name, String(c.head), String(c.get), String(c.head + c.get), String(c.blobGets), `${c.nodesOnNewLatest}/${NODES}`]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  for (const line of [header, widths.map((w) => '-'.repeat(w)), ...cells]) console.log(line.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1); });

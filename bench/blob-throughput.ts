// npm run bench [-- --quick | --size-mib N | --runs N | --per-client-mib N | --skip-peer | --link-mibps N]
// Blob throughput and memory of ocimirror against a real CNCF Distribution upstream (issue 3 §8): direct, cold,
// warm, 8 concurrent cold clients (upstream GETs from Distribution's access log) and peak RSS while 8 clients
// each stream ≥ 1 GiB. Exits non-zero only on a real error (wrong bytes, a crash), never on a missed goal.
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { buildLargeLayerImage } from '../test/helpers/images.js';
import { pushImage } from '../test/helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { closeClients, fetchBlob, fetchConcurrently } from './blob-client.js';
import { startLink } from './link.js';
import { measurePeer } from './peer.js';
import { ProxyProcess, type ProxyOptions } from './proxy-process.js';
import { megabytes, mbPerSecond, table, verdict, type Row } from './report.js';
import { measure, Series } from './series.js';

const MiB = 1024 * 1024;
const REPO = 'bench/large';

interface Options { sizeMiB: number; runs: number; clients: number; perClientMiB: number; peer: boolean; linkMiBps: number; nodeArgs: string[] }

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv, strict: true,
    options: {
      quick: { type: 'boolean' }, 'size-mib': { type: 'string' }, runs: { type: 'string' }, clients: { type: 'string' },
      'per-client-mib': { type: 'string' }, 'skip-peer': { type: 'boolean' }, 'link-mibps': { type: 'string' },
    },
  });
  const int = (name: string, raw: string | undefined, fallback: number) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
    return n;
  };
  const quick = values.quick ?? false;
  return {
    sizeMiB: int('--size-mib / OCIMIRROR_BENCH_SIZE_MIB', values['size-mib'] ?? process.env.OCIMIRROR_BENCH_SIZE_MIB, quick ? 64 : 256),
    runs: int('--runs', values.runs, quick ? 1 : 3),
    clients: int('--clients', values.clients, 8),
    perClientMiB: int('--per-client-mib', values['per-client-mib'], quick ? 256 : 1024),
    peer: !(values['skip-peer'] ?? false),
    // 0 leaves out the slow-link rows.
    linkMiBps: values['link-mibps'] === '0' ? 0 : int('--link-mibps', values['link-mibps'], quick ? 0 : 64),
    nodeArgs: (process.env.OCIMIRROR_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
  };
}

const say = (text: string) => process.stderr.write(`bench: ${text}\n`);
const loadAverage = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

async function withMirror<T>(opts: ProxyOptions, fn: (mirror: ProxyProcess) => Promise<T>): Promise<T> {
  const mirror = await ProxyProcess.start(opts);
  try {
    const result = await fn(mirror);
    mirror.assertAlive();
    return result;
  } finally { await mirror.stop(); }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const rounds = Math.ceil(opts.perClientMiB / opts.sizeMiB);
  const work = makeTmpDir('ocimirror-bench-');
  const loadAtStart = loadAverage();
  let upstream: Distribution | undefined;
  try {
    say(`building a ${opts.sizeMiB} MiB random layer (uncompressed tar of AES-CTR keystream)`);
    const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: opts.sizeMiB * MiB, compression: 'none', dir: work, label: 'bench' });
    const layer = image.layers[0]!;
    upstream = await startDistribution();
    const dist = upstream;
    say(`pushing ${layer.digest} (${layer.size} bytes) to Distribution at ${dist.url}`);
    await pushImage(dist.url, REPO, 'bench', image);
    await fs.promises.rm(layer.file!, { force: true });
    const path = `/v2/${REPO}/blobs/${layer.digest}`;
    const mirrorOpts: ProxyOptions = { registry: dist.host, endpoint: dist.url, nodeArgs: opts.nodeArgs };
    const one = (base: string) => async () => (await fetchBlob(base + path, layer.digest, layer.size)).ms;
    const many = (base: string, n: number) => async () => (await fetchConcurrently(base + path, layer.digest, layer.size, opts.clients, n)).wallMs;
    await one(dist.url)(); // page cache and connections warm before anything is timed

    // Rows 1–4 interleaved per run, so a burst of load from elsewhere on the machine hits them alike.
    const direct = new Series(); const cold = new Series(); const warm = new Series();
    const directFan = new Series(); const fan = new Series();
    let idleRss = 0;
    for (let run = 1; run <= opts.runs; run++) {
      say(`run ${run}/${opts.runs}: direct, cold, warm; ${opts.clients} direct, ${opts.clients} cold`);
      direct.add(await measure(dist, undefined, layer.size, one(dist.url)));
      await withMirror(mirrorOpts, async (mirror) => {
        idleRss = Math.max(idleRss, mirror.memory().now);
        cold.add(await measure(dist, mirror, layer.size, one(mirror.url)), mirror);
        warm.add(await measure(dist, mirror, layer.size, one(mirror.url)), mirror);
      });
      directFan.add(await measure(dist, undefined, opts.clients * layer.size, many(dist.url, 1)));
      await withMirror(mirrorOpts, async (mirror) => {
        fan.add(await measure(dist, mirror, opts.clients * layer.size, many(mirror.url, 1)), mirror);
      });
    }

    // Row 5: each client reads the blob `rounds` times in a row (>= perClientMiB each): first cold, then warm.
    say(`${opts.clients} clients x ${rounds} reads of ${opts.sizeMiB} MiB each (first cold, then warm), sampling RSS`);
    const stream = new Series();
    const perClient = rounds * layer.size;
    const sampledMax = await withMirror(mirrorOpts, async (mirror) => {
      stream.add(await measure(dist, mirror, opts.clients * perClient, many(mirror.url, rounds)), mirror);
      return mirror.memory().sampledMax;
    });

    const peer = opts.peer ? await measurePeer(dist, path, layer.digest, layer.size, opts.clients) : undefined;

    // Rows 6–7: the same over a rate-limited uplink, where fan-out is what matters (one transfer, N clients).
    const slowOne = new Series(); const slowFan = new Series();
    if (opts.linkMiBps > 0) {
      const link = await startLink({ host: '127.0.0.1', port: dist.port }, opts.linkMiBps * MiB);
      try {
        say(`over a ${opts.linkMiBps} MiB/s link: 1 cold client, then ${opts.clients} cold clients`);
        const linked = { ...mirrorOpts, endpoint: link.url };
        await withMirror(linked, async (mirror) => { slowOne.add(await measure(dist, mirror, layer.size, one(mirror.url)), mirror); });
        await withMirror(linked, async (mirror) => { slowFan.add(await measure(dist, mirror, opts.clients * layer.size, many(mirror.url, 1)), mirror); });
      } finally { await link.close(); }
    }

    // Report.
    const d = direct.wallMs; const c = cold.wallMs; const w = warm.wallMs; const f = fan.wallMs;
    const fanOneGet = fan.gets.every((n) => n === 1);
    const rssRow = stream.peakRss ?? NaN;
    const rssApplies = perClient >= 1024 * MiB;
    const rssResult = rssApplies ? verdict(rssRow <= 200e6) : 'n/a (< 1 GiB per client)';
    const rows: Row[] = [
      direct.row('1 direct GET from Distribution', 'reference'),
      cold.row('2 cold GET through ocimirror', `>= 0.8x direct (${(0.8 * mbPerSecond(layer.size, d)).toFixed(0)} MB/s)`, verdict(d / c >= 0.8)),
      warm.row('3 warm GET through ocimirror', `>= direct (${mbPerSecond(layer.size, d).toFixed(0)} MB/s)`, verdict(d / w >= 1)),
      directFan.row(`4a ${opts.clients} concurrent direct GETs`, 'reference for 4'),
      fan.row(`4 ${opts.clients} concurrent cold clients`, `1 upstream GET; wall <= 1.3x cold (${(1.3 * c / 1000).toFixed(2)} s)`, verdict(fanOneGet && f / c <= 1.3)),
      stream.row(`5 ${opts.clients} clients x ${rounds} reads (${megabytes(perClient)} each)`, 'peak RSS <= 200 MB', rssResult),
      ...(opts.linkMiBps > 0 ? [
        slowOne.row(`6 cold GET over a ${opts.linkMiBps} MiB/s uplink`, 'reference for 7'),
        slowFan.row(`7 ${opts.clients} cold clients over that uplink`, `1 upstream GET; wall <= 1.3x row 6 (${(1.3 * slowOne.wallMs / 1000).toFixed(2)} s)`,
          verdict(slowFan.gets.every((n) => n === 1) && slowFan.wallMs / slowOne.wallMs <= 1.3)),
      ] : []),
    ];
    const peakAny = Math.max(...[cold, warm, fan, stream].map((s) => s.peakRss ?? 0));
    const out = [
      `ocimirror blob benchmark: ${megabytes(layer.size)} random layer (${opts.sizeMiB} MiB), median of ${opts.runs} run(s), ${opts.clients} clients, Distribution ${dist.url}`,
      `machine: ${os.cpus().length} cores, load average (1/5/15 min) ${loadAtStart} at start, ${loadAverage()} at end; mirror idle RSS ${megabytes(idleRss)}`,
      '',
      table(rows),
      '',
      `raw wall times (ms): direct ${direct.raw()}; cold ${cold.raw()}; warm ${warm.raw()}; ${opts.clients} direct ${directFan.raw()}; ${opts.clients} cold ${fan.raw()}`,
      `peak RSS is the kernel's VmHWM of each mirror process; the 50 ms VmRSS sampler saw at most ${megabytes(sampledMax)} in row 5`,
      '',
      'ratios against the goals:',
      `  warm / direct throughput            ${(d / w).toFixed(2)}  (goal >= 1.00)  ${verdict(d / w >= 1)}`,
      `  cold / direct throughput            ${(d / c).toFixed(2)}  (goal >= 0.80)  ${verdict(d / c >= 0.8)}`,
      `  ${opts.clients} cold clients wall / 1 cold wall  ${(f / c).toFixed(2)}  (goal <= 1.30)  ${verdict(f / c <= 1.3)}`,
      `  (for scale: ${opts.clients} cold / ${opts.clients} direct wall ${(f / directFan.wallMs).toFixed(2)}; ${opts.clients} direct / 1 direct wall ${(directFan.wallMs / d).toFixed(2)})`,
      `  upstream GETs for ${opts.clients} cold clients   ${fan.gets.join('/')}  (goal = 1 each run)  ${verdict(fanOneGet)}`,
      ...(opts.linkMiBps > 0 ? [`  over a ${opts.linkMiBps} MiB/s uplink: ${opts.clients} cold / 1 cold wall  ${(slowFan.wallMs / slowOne.wallMs).toFixed(2)}  (goal <= 1.30)  ${verdict(slowFan.wallMs / slowOne.wallMs <= 1.3)}; upstream GETs ${slowFan.gets.join('/')}`] : []),
      `  mirror peak RSS in row 5            ${megabytes(rssRow)}  (goal <= 200 MB)  ${rssResult}`,
      `  mirror peak RSS in any row          ${megabytes(peakAny)}`,
      ...(peer ? ['', peer] : []),
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await upstream?.close();
    await removeTmpDir(work);
    await closeClients();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});

// npm run bench [-- --quick | --size-mib N | --runs N | --client undici|curl | ...]: see bench/README.md.
// ocimirror against CNCF Distribution's proxy mode and the plainest Node code, side by side in one run: cold and
// warm single-client throughput, 8 concurrent cold clients (upstream GETs from the upstream's access log), CPU
// seconds per GB, peak RSS, small requests with ab. Exits non-zero only on a real error, never on a missed goal.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { buildLargeLayerImage } from '../test/helpers/images.js';
import { pushImage } from '../test/helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { clients, closeClients, fanOut, type ClientKind } from './clients.js';
import { startLink } from './link.js';
import { Results } from './results.js';
import { median } from './report.js';
import { concurrentColdRun, singleClientRun, startMirror, withServers, type RunContext } from './runs.js';
import { startReferences, type References } from './servers.js';
import { summary, type Extras } from './summary.js';

const MiB = 1024 * 1024;
const REPO = 'bench/large';
const TAG = 'bench';

export interface Options {
  quick: boolean; sizeMiB: number; runs: number; clients: number; warmGets: number; perClientMiB: number;
  abSeconds: number; linkMiBps: number; client: ClientKind | 'auto'; nodeArgs: string[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv, strict: true,
    options: {
      quick: { type: 'boolean' }, 'size-mib': { type: 'string' }, runs: { type: 'string' }, clients: { type: 'string' },
      'warm-gets': { type: 'string' }, 'per-client-mib': { type: 'string' }, 'ab-seconds': { type: 'string' },
      'link-mibps': { type: 'string' }, client: { type: 'string' },
    },
  });
  const int = (name: string, raw: string | undefined, fallback: number, min = 1) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const client = values.client ?? 'curl';
  if (client !== 'undici' && client !== 'curl' && client !== 'auto') throw new Error(`--client: expected undici, curl or auto, got ${JSON.stringify(client)}`);
  const quick = values.quick ?? false;
  return {
    quick,
    sizeMiB: int('--size-mib / OCIMIRROR_BENCH_SIZE_MIB', values['size-mib'] ?? process.env.OCIMIRROR_BENCH_SIZE_MIB, quick ? 64 : 200),
    runs: int('--runs', values.runs, quick ? 1 : 7),
    clients: int('--clients', values.clients, 8),
    warmGets: int('--warm-gets', values['warm-gets'], quick ? 2 : 3),
    perClientMiB: int('--per-client-mib', values['per-client-mib'], quick ? 256 : 1024),
    abSeconds: int('--ab-seconds', values['ab-seconds'], quick ? 1 : 3),
    linkMiBps: int('--link-mibps', values['link-mibps'], quick ? 0 : 64, 0), // 0 leaves out the uplink rows
    client,
    nodeArgs: (process.env.OCIMIRROR_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
  };
}

const say = (text: string) => process.stderr.write(`bench: ${text}\n`);
const loadAverage = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** Which client tops out higher: each GETs the layer from Distribution (sendfile) and from the Node static server. */
async function calibrate(upstream: Distribution, refs: References, path: string, size: number, rounds: number): Promise<{ lines: string[]; best: ClientKind }> {
  const servers = [['Distribution direct (sendfile)', upstream.url], ['Node static', refs.static.url]] as const;
  const lines: string[] = [];
  const best = { undici: 0, curl: 0 };
  for (const [name, base] of servers) {
    const ms: Record<ClientKind, number[]> = { undici: [], curl: [] };
    for (let r = 0; r < rounds; r++) for (const kind of ['undici', 'curl'] as const) ms[kind].push(await clients[kind](base + path, size));
    const rate = (kind: ClientKind) => size / 1e6 / (median(ms[kind]) / 1000);
    lines.push(`${name}: undici ${rate('undici').toFixed(0)} MB/s, curl ${rate('curl').toFixed(0)} MB/s`);
    for (const kind of ['undici', 'curl'] as const) best[kind] += rate(kind);
  }
  return { lines, best: best.undici >= best.curl ? 'undici' : 'curl' };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const work = makeTmpDir('ocimirror-bench-');
  const loadAtStart = loadAverage();
  let upstream: Distribution | undefined;
  try {
    say(`building a ${opts.sizeMiB} MiB random layer (uncompressed tar of AES-CTR keystream)`);
    const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: opts.sizeMiB * MiB, compression: 'none', dir: work, label: 'bench' });
    const layer = image.layers[0]!;
    const first = await buildLargeLayerImage({ format: 'oci', sizeBytes: opts.sizeMiB * MiB, compression: 'none', dir: work, label: 'bench-first' });
    upstream = await startDistribution();
    say(`pushing ${layer.digest} (${layer.size} bytes) and a second layer to Distribution at ${upstream.url}`);
    await pushImage(upstream.url, REPO, TAG, image);
    await pushImage(upstream.url, REPO, `${TAG}-first`, first);
    const path = `/v2/${REPO}/blobs/${layer.digest}`;
    const ctx: RunContext = {
      upstream, layerFile: layer.file!, repo: REPO, layer, firstLayer: first.layers[0]!, small: image.config, tag: TAG, manifestDigest: image.manifestDigest, manifestType: image.mediaType,
      nodeArgs: opts.nodeArgs, clients: opts.clients, warmGets: opts.warmGets, abSeconds: opts.abSeconds, say,
    };

    say('client ceiling: undici (counting) and curl (-o /dev/null) against Distribution direct and the Node static server');
    const refs = await startReferences(upstream.url, layer.file!);
    const calibration = await calibrate(upstream, refs, path, layer.size, opts.quick ? 2 : 3).finally(() => refs.stop());
    const kind = opts.client === 'auto' ? calibration.best : opts.client;
    const timed = { kind: 'timed' as const, get: clients[kind] };

    say('verification pass (untimed): every server and case once, each body hashed');
    const scratch = new Results();
    await singleClientRun(ctx, scratch, 0, { kind: 'verify' });
    await concurrentColdRun(ctx, scratch, 0, { kind: 'verify' }, { kase: 'fan', clients: opts.clients });

    const results = new Results();
    for (let run = 1; run <= opts.runs; run++) {
      say(`run ${run}/${opts.runs} (load ${loadAverage()}): cold, warm x${opts.warmGets}, ab; ${opts.clients} concurrent cold`);
      await singleClientRun(ctx, results, run, timed);
      await concurrentColdRun(ctx, results, run, timed, { kase: 'fan', clients: opts.clients });
    }

    const rounds = Math.ceil(opts.perClientMiB / opts.sizeMiB);
    say(`${opts.clients} clients x ${rounds} reads of the layer on a fresh ocimirror (the first cold, then warm)`);
    const extras: Extras = { rounds, perClient: rounds * layer.size, rssApplies: opts.perClientMiB >= 1024 };
    await withServers([() => startMirror(ctx)], async ([mirror]) => {
      const url = `${mirror!.url}${path}`;
      extras.rssWallMs = await fanOut((u) => timed.get(u, layer.size), url, opts.clients, rounds);
      extras.rssHwm = mirror!.child.memory()?.hwm ?? NaN;
    });

    if (opts.linkMiBps > 0) {
      const link = await startLink({ host: '127.0.0.1', port: upstream.port }, opts.linkMiBps * MiB);
      try {
        say(`over a ${opts.linkMiBps} MiB/s uplink: 1 cold client, then ${opts.clients} cold clients`);
        await concurrentColdRun(ctx, results, 1, timed, { kase: 'link-one', clients: 1, endpointUrl: link.url });
        await concurrentColdRun(ctx, results, 1, timed, { kase: 'link-fan', clients: opts.clients, endpointUrl: link.url });
      } finally { await link.close(); }
    }

    const header = [
      `ocimirror blob benchmark (issue 9): ${layer.size} byte random layer (${opts.sizeMiB} MiB), median of ${opts.runs} run(s), ` +
        `${opts.warmGets} warm GETs per server per run, ${opts.clients} concurrent clients, client: ${kind}`,
      `machine: ${os.cpus().length} cores, load average (1/5/15 min) ${loadAtStart} at start, ${loadAverage()} at end; ` +
        `${((Date.now() - started) / 60000).toFixed(1)} min`,
      `client ceiling (median MB/s of ${opts.quick ? 2 : 3} GETs): ${calibration.lines.join('; ')}`,
    ];
    process.stdout.write(`${[...header, '', ...summary(results, opts, extras)].join('\n')}\n`);
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

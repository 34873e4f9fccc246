// npm run bench:warm-gc [-- --processes 6 --gets 3 --idle-ms 12000 --gap-ms 1000 --size-mib 200]
// Why ocimirror's warm throughput differs from one process to the next (bench/PROFILE.md): each fresh process
// serves one cold GET, then `--gets` warm GETs (after `--idle-ms` of idling, and `--gap-ms` between them: a server
// idles between pulls, and V8's memory reducer acts on idle processes); for every
// warm GET it prints MB/s, ocimirror's CPU seconds and the V8 collections it ran (bench/gc-observer.cjs, preloaded).
// A process whose warm GETs run major (mark-compact) collections is in the slow mode; one with minor ones only is not.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { buildLargeLayerImage } from '../test/helpers/images.js';
import { pushImage } from '../test/helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { curlGet } from './clients.js';
import { startOcimirror } from './servers.js';

const MiB = 1024 * 1024;
const OBSERVER = path.join(import.meta.dirname, 'gc-observer.cjs');

function options() {
  const { values } = parseArgs({
    options: {
      processes: { type: 'string' }, gets: { type: 'string' }, 'idle-ms': { type: 'string' }, 'gap-ms': { type: 'string' }, 'size-mib': { type: 'string' },
    },
  });
  const int = (name: string, raw: string | undefined, fallback: number, min = 1) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    processes: int('processes', values.processes, 6), gets: int('gets', values.gets, 3),
    idleMs: int('idle-ms', values['idle-ms'], 12_000, 0), gapMs: int('gap-ms', values['gap-ms'], 1000, 0), sizeMiB: int('size-mib', values['size-mib'], 200),
  };
}

interface Collection { at: number; kind: string; ms: number }

const collections = (file: string): Collection[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').trim().split('\n').filter(Boolean).map((line) => {
  const [at, kind, ms] = line.split(' ');
  return { at: Number(at), kind: kind ?? '', ms: Number(ms) };
});

async function main(): Promise<void> {
  const opts = options();
  const work = makeTmpDir('ocimirror-warm-gc-');
  let upstream: Distribution | undefined;
  try {
    upstream = await startDistribution();
    const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: opts.sizeMiB * MiB, compression: 'none', dir: work, label: 'warm-gc' });
    await pushImage(upstream.url, 'bench/warm-gc', 'x', image);
    const layer = image.layers[0]!;
    const blob = `/v2/bench/warm-gc/blobs/${layer.digest}`;
    const rate = (ms: number) => (layer.size / 1e3 / ms).toFixed(0);
    let slow = 0;
    for (let p = 0; p < opts.processes; p++) {
      const log = path.join(work, `gc-${p}.log`);
      process.env.OCIMIRROR_BENCH_GC_LOG = log; // inherited by the child started next
      const mirror = await startOcimirror({ registry: upstream.host, endpoint: upstream.url, nodeArgs: ['--require', OBSERVER] });
      try {
        const cold = await curlGet(mirror.url + blob, layer.size);
        await mirror.settle(layer.digest);
        await new Promise((r) => setTimeout(r, opts.idleMs));
        const gets: { from: number; to: number; ms: number; cpu: number }[] = [];
        for (let g = 0; g < opts.gets; g++) {
          if (g > 0) await new Promise((r) => setTimeout(r, opts.gapMs));
          const cpu = mirror.child.cpuSeconds();
          const from = Date.now();
          const ms = await curlGet(mirror.url + blob, layer.size);
          gets.push({ from, to: Date.now(), ms, cpu: mirror.child.cpuSeconds() - cpu });
        }
        await new Promise((r) => setTimeout(r, 250)); // the observer flushes every 100 ms
        const gcs = collections(log);
        const rows = gets.map((g) => {
          const during = gcs.filter((c) => c.at >= g.from && c.at <= g.to);
          const major = during.filter((c) => c.kind === 'major');
          return { major: major.length, text: `${rate(g.ms).padStart(5)} MB/s, CPU ${g.cpu.toFixed(2)} s, ${during.filter((c) => c.kind === 'minor').length} minor + ${major.length} major GCs (${major.reduce((a, c) => a + c.ms, 0).toFixed(0)} ms)` };
        });
        const mode = rows.some((r) => r.major > 0) ? 'mark-compact' : 'scavenges only';
        if (mode === 'mark-compact') slow++;
        process.stdout.write(`process ${p + 1}: cold ${rate(cold)} MB/s; warm (${mode}): ${rows.map((r) => r.text).join(' | ')}; load ${os.loadavg()[0]!.toFixed(1)}\n`);
      } finally {
        await mirror.stop();
      }
    }
    process.stdout.write(`${slow} of ${opts.processes} processes ran major GCs during warm GETs (${opts.sizeMiB} MiB layer, idle ${opts.idleMs} ms before them, ${opts.gapMs} ms between them)\n`);
  } finally {
    await upstream?.close();
    await removeTmpDir(work);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:warm-gc: FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});

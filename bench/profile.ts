// npm run bench:profile [-- --size-mib N --layers N --warm-gets N --top N --out DIR]
// CPU profiles (node --cpu-prof) of ocimirror's two big-blob paths, each in a process of its own: one serving
// only cold GETs (N distinct layers, each fetched once by one curl client), then one serving only warm GETs (a
// second process on the cache the first filled). Prints each profile's summary (bench/cpuprofile-summary.ts)
// without the start-up; the .cpuprofile files stay in --out, to open in Chrome DevTools or summarise again.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { buildLargeLayerImage } from '../test/helpers/images.js';
import { pushImage } from '../test/helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { curlGet } from './clients.js';
import { render, summarise, type CpuProfile } from './cpuprofile-summary.js';
import { startOcimirror } from './servers.js';

const MiB = 1024 * 1024;
const REPO = 'bench/profile';
const say = (text: string) => process.stderr.write(`bench:profile: ${text}\n`);

function options() {
  const { values } = parseArgs({
    options: { 'size-mib': { type: 'string' }, layers: { type: 'string' }, 'warm-gets': { type: 'string' }, top: { type: 'string' }, out: { type: 'string' } },
  });
  const int = (name: string, raw: string | undefined, fallback: number) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
    return n;
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    sizeMiB: int('size-mib', values['size-mib'], 200), layers: int('layers', values.layers, 3),
    warmGets: int('warm-gets', values['warm-gets'], 15), top: int('top', values.top, 25),
    out: path.resolve(values.out ?? path.join(os.tmpdir(), `ocimirror-profile-${stamp}`)),
  };
}

interface Phase { name: 'cold' | 'warm'; urls: string[]; size: number }

/** One ocimirror process with --cpu-prof on `cacheDir`, GETting `urls` in turn; returns its profile and start-up time. */
async function profiled(upstream: Distribution, cacheDir: string, out: string, phase: Phase): Promise<{ file: string; startupMs: number; rates: number[] }> {
  const dir = path.join(out, phase.name);
  const extra = (process.env.OCIMIRROR_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const spawned = Date.now();
  const mirror = await startOcimirror({ registry: upstream.host, endpoint: upstream.url, cacheDir, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir, ...extra] });
  const startupMs = Date.now() - spawned;
  const rates: number[] = [];
  try {
    for (const url of phase.urls) {
      const ms = await curlGet(mirror.url + url, phase.size);
      rates.push(phase.size / 1e3 / ms);
      // A cold fill commits behind its client: let it finish (a scrape of /metrics tells) before the next one.
      if (phase.name === 'cold') await mirror.settle(url.slice(url.lastIndexOf('/') + 1));
    }
  } finally {
    await mirror.stop(); // the profile is written on the way out
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${dir}, found ${files.length}`);
  return { file: path.join(dir, files[0]!), startupMs, rates };
}

async function main(): Promise<void> {
  const opts = options();
  const work = makeTmpDir('ocimirror-profile-');
  let upstream: Distribution | undefined;
  try {
    upstream = await startDistribution();
    const paths: string[] = [];
    let size = 0;
    for (let i = 0; i < opts.layers; i++) {
      say(`building and pushing layer ${i + 1}/${opts.layers} (${opts.sizeMiB} MiB)`);
      const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: opts.sizeMiB * MiB, compression: 'none', dir: work, label: `profile ${i}` });
      await pushImage(upstream.url, REPO, `l${i}`, image);
      const layer = image.layers[0]!;
      await fs.promises.rm(layer.file!, { force: true });
      paths.push(`/v2/${REPO}/blobs/${layer.digest}`);
      size = layer.size;
    }
    fs.mkdirSync(opts.out, { recursive: true });
    const cacheDir = path.join(work, 'cache');
    say(`cold: ${opts.layers} layers, one GET each, on a fresh ocimirror`);
    const cold = await profiled(upstream, cacheDir, opts.out, { name: 'cold', urls: paths, size });
    say(`warm: ${opts.warmGets} GETs on a second ocimirror over the filled cache`);
    const warmUrls = Array.from({ length: opts.warmGets }, (_, i) => paths[i % paths.length]!);
    const warm = await profiled(upstream, cacheDir, opts.out, { name: 'warm', urls: warmUrls, size });
    const root = path.resolve(import.meta.dirname, '..');
    for (const [name, p] of [['cold', cold], ['warm', warm]] as const) {
      const profile = JSON.parse(fs.readFileSync(p.file, 'utf8')) as CpuProfile;
      process.stdout.write(`== ${name}: ${p.rates.map((r) => r.toFixed(0)).join(' ')} MB/s per GET (curl); first ${p.startupMs} ms (start-up) left out\n`);
      process.stdout.write(`${render(summarise(profile, p.file, root, p.startupMs), opts.top)}\n\n`);
    }
    process.stdout.write(`profiles kept in ${opts.out} (load average at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
  } finally {
    await upstream?.close();
    await removeTmpDir(work);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:profile: FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});

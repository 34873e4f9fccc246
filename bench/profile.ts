// npm run bench:profile [-- --size-mib N --layers N --warm-gets N --ab-seconds N --top N --out DIR]
// CPU profiles (node --cpu-prof) of ocimirror, each path in a process of its own: one serving only cold GETs (N
// distinct layers, each fetched once by one curl client), one serving only warm GETs (on the cache the first
// filled), one serving only small requests (ab -k -c 50: tag HEAD within the TTL, then the image config blob).
// Prints each profile's summary (bench/cpuprofile-summary.ts) without the start-up; the .cpuprofile files stay
// in --out, to open in Chrome DevTools or summarise again.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { buildLargeLayerImage } from '../test/helpers/images.js';
import { pushImage } from '../test/helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { ab } from './ab.js';
import { curlGet, verifiedGet } from './clients.js';
import { render, summarise, type CpuProfile } from './cpuprofile-summary.js';
import { startOcimirror, type Server } from './servers.js';

const MiB = 1024 * 1024;
const REPO = 'bench/profile';
const say = (text: string) => process.stderr.write(`bench:profile: ${text}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string' }, layers: { type: 'string' }, 'warm-gets': { type: 'string' }, 'ab-seconds': { type: 'string' },
      top: { type: 'string' }, out: { type: 'string' },
    },
  });
  const int = (name: string, raw: string | undefined, fallback: number) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
    return n;
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    sizeMiB: int('size-mib', values['size-mib'], 200), layers: int('layers', values.layers, 3),
    warmGets: int('warm-gets', values['warm-gets'], 15), abSeconds: int('ab-seconds', values['ab-seconds'], 5), top: int('top', values.top, 25),
    out: path.resolve(values.out ?? path.join(os.tmpdir(), `ocimirror-profile-${stamp}`)),
  };
}

interface Phase { name: 'cold' | 'warm' | 'small'; run(mirror: Server): Promise<string> }

/** One ocimirror process with --cpu-prof on `cacheDir` running `phase`; returns its profile, start-up time and figures. */
async function profiled(upstream: Distribution, cacheDir: string, out: string, phase: Phase): Promise<{ file: string; startupMs: number; figures: string }> {
  const dir = path.join(out, phase.name);
  const extra = (process.env.OCIMIRROR_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const spawned = Date.now();
  const mirror = await startOcimirror({ registry: upstream.host, endpoint: upstream.url, cacheDir, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir, ...extra] });
  const startupMs = Date.now() - spawned;
  let figures: string;
  try {
    figures = await phase.run(mirror);
  } finally {
    await mirror.stop(); // the profile is written on the way out
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${dir}, found ${files.length}`);
  return { file: path.join(dir, files[0]!), startupMs, figures };
}

/** GETs each of `urls` in turn; a cold fill commits behind its client, so `settle` waits for it before the next. */
const transfers = (name: 'cold' | 'warm', urls: string[], size: number): Phase => ({
  name,
  async run(mirror) {
    const rates: string[] = [];
    for (const url of urls) {
      rates.push((size / 1e3 / (await curlGet(mirror.url + url, size))).toFixed(0));
      if (name === 'cold') await mirror.settle(url.slice(url.lastIndexOf('/') + 1));
    }
    return `${rates.join(' ')} MB/s per GET (curl)`;
  },
});

async function main(): Promise<void> {
  const opts = options();
  const work = makeTmpDir('ocimirror-profile-');
  let upstream: Distribution | undefined;
  try {
    upstream = await startDistribution();
    const paths: string[] = [];
    let size = 0;
    let small: { url: string; digest: string; size: number; tagUrl: string; accept: string } | undefined;
    for (let i = 0; i < opts.layers; i++) {
      say(`building and pushing layer ${i + 1}/${opts.layers} (${opts.sizeMiB} MiB)`);
      const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: opts.sizeMiB * MiB, compression: 'none', dir: work, label: `profile ${i}` });
      await pushImage(upstream.url, REPO, `l${i}`, image);
      const layer = image.layers[0]!;
      await fs.promises.rm(layer.file!, { force: true });
      paths.push(`/v2/${REPO}/blobs/${layer.digest}`);
      size = layer.size;
      small ??= { url: `/v2/${REPO}/blobs/${image.config.digest}`, digest: image.config.digest, size: image.config.size, tagUrl: `/v2/${REPO}/manifests/l${i}`, accept: image.mediaType };
    }
    fs.mkdirSync(opts.out, { recursive: true });
    const cacheDir = path.join(work, 'cache');
    say(`cold: ${opts.layers} layers, one GET each, on a fresh ocimirror`);
    const cold = await profiled(upstream, cacheDir, opts.out, transfers('cold', paths, size));
    say(`warm: ${opts.warmGets} GETs on a second ocimirror over the filled cache`);
    const warm = await profiled(upstream, cacheDir, opts.out, transfers('warm', Array.from({ length: opts.warmGets }, (_, i) => paths[i % paths.length]!), size));
    say(`small requests: ab -k -c 50 for ${opts.abSeconds} s each, tag HEAD (within the TTL) and small blob GET, on a third ocimirror`);
    const s = small!;
    const smalls = await profiled(upstream, cacheDir, opts.out, {
      name: 'small',
      async run(mirror) {
        await verifiedGet(mirror.url + s.url, s.digest, s.size); // cached by now; the tag is fetched once, then within the TTL
        const head = await ab({ url: mirror.url + s.tagUrl, head: true, accept: s.accept, seconds: opts.abSeconds, concurrency: 50 });
        const get = await ab({ url: mirror.url + s.url, seconds: opts.abSeconds, concurrency: 50 });
        return `tag HEAD ${head.toFixed(0)} req/s, then small blob GET ${get.toFixed(0)} req/s (ab -k -c 50)`;
      },
    });
    const root = path.resolve(import.meta.dirname, '..');
    for (const [name, p] of [['cold', cold], ['warm', warm], ['small requests', smalls]] as const) {
      const profile = JSON.parse(fs.readFileSync(p.file, 'utf8')) as CpuProfile;
      process.stdout.write(`== ${name}: ${p.figures}; first ${p.startupMs} ms (start-up) left out\n`);
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

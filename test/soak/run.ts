// npm run soak: ocimirror (the built CLI, its own process) in front of a real Distribution, under ≥ 300 concurrent
// keep-alive clients for SOAK_SECONDS (60) against a warm cache — tag HEAD/GET, manifests by digest, small blobs and
// a 200 MiB layer — plus clients that stop reading or hang up mid-body, and cold pulls. Samples the proxy's RSS and
// open files, times /healthz, then waits for the proxy to settle and prints a table. Exits 1 if a goal is missed.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { startDistribution } from '../helpers/distribution.js';
import { buildImage, buildLargeLayerImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';
import { bigClient, coldClient, dropClient, healthSampler, newTally, stallClient, tagClient, type SoakTarget } from './clients.js';
import { printReport } from './report.js';

const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const SECONDS = env('SOAK_SECONDS', 60);
const COUNTS = { tag: env('SOAK_TAG_CLIENTS', 256), big: env('SOAK_BIG_CLIENTS', 12), stall: env('SOAK_STALL_CLIENTS', 16), drop: env('SOAK_DROP_CLIENTS', 16), cold: env('SOAK_COLD_CLIENTS', 4) };
const COLD_IMAGES = env('SOAK_COLD_IMAGES', 40);
/** Extra node flags for the proxy, e.g. SOAK_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p' to profile it under load. */
const NODE_ARGS = (process.env.SOAK_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const BIG_BYTES = env('SOAK_BIG_MIB', 200) * 1024 * 1024;
const IDLE_TIMEOUT_S = 10;

const proc = (pid: number) => ({
  rssMiB: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
  fds: () => readdirSync(`/proc/${pid}/fd`).length,
  /** user + system CPU seconds so far (fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s). */
  cpuSeconds: () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []; return (Number(f[11]) + Number(f[12])) / 100; },
});

/** The proxy's event-loop delay since the previous scrape (prom-client resets its histogram on each). */
async function eventLoopLag(port: number): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^ocimirror_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { p99: read('p99'), max: read('max') };
}

async function main(): Promise<number> {
  const work = makeTmpDir('ocimirror-soak-');
  const dist = await startDistribution();
  let child: ReturnType<typeof spawn> | undefined;
  try {
    process.stdout.write(`building and pushing images (one with a ${BIG_BYTES >> 20} MiB layer, ${COLD_IMAGES} cold ones)…\n`);
    const small = await buildImage({ format: 'oci', label: 'soak small' });
    const big = await buildLargeLayerImage({ format: 'oci', sizeBytes: BIG_BYTES, dir: work, compression: 'none', label: 'soak big' });
    await pushImage(dist.url, 'library/soak-small', '1.0', small);
    await pushImage(dist.url, 'library/soak-big', '1.0', big);
    const cold: string[] = [];
    for (let i = 0; i < COLD_IMAGES; i++) {
      const repo = `library/soak-cold-${i}`;
      await pushImage(dist.url, repo, '1.0', await buildImage({ format: i % 2 ? 'oci' : 'docker', label: `soak cold ${i}` }));
      cold.push(repo);
    }

    const port = await freePort();
    const cacheDir = join(work, 'cache');
    const configFile = join(work, 'ocimirror.yaml');
    writeFileSync(configFile, YAML.stringify({
      server: { listen: `127.0.0.1:${port}`, idleTimeout: `${IDLE_TIMEOUT_S}s` },
      cache: { dir: cacheDir, tagTtl: '5s' },
      log: { level: 'warn' },
      mirrors: { 'docker.io': { endpoint: [dist.url] } },
    }));
    child = spawn(process.execPath, [...NODE_ARGS, resolve(import.meta.dirname, '../../bin/ocimirror.js'), 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let proxyLog = '';
    child.stdout!.on('data', (c: Buffer) => { proxyLog = (proxyLog + c.toString('utf8')).slice(-20_000); });
    child.stderr!.on('data', (c: Buffer) => { proxyLog = (proxyLog + c.toString('utf8')).slice(-20_000); });
    const target: SoakTarget = { port, small, big, cold };
    await waitForHealth(port);
    const p = proc(child.pid!);

    process.stdout.write('warming the cache…\n');
    const warm = newTally();
    await tagClient(target, warm, once());
    await bigClient(target, warm, once());
    if (warm.errors5xx + warm.connectionErrors > 0) throw new Error(`warm-up failed: ${warm.firstError}`);
    const before = { rss: p.rssMiB(), fds: p.fds() };
    await eventLoopLag(port);
    const cpuBefore = p.cpuSeconds();

    process.stdout.write(`soaking for ${SECONDS} s with ${Object.values(COUNTS).reduce((a, b) => a + b, 0) + 1} clients…\n`);
    const health = healthSampler(port, SECONDS);
    await health.ready;
    const deadline = Date.now() + SECONDS * 1000;
    const over = () => Date.now() >= deadline;
    const samples: { rss: number; fds: number }[] = [];
    const sampler = setInterval(() => samples.push({ rss: p.rssMiB(), fds: p.fds() }), 250);
    const tallies = { tag: newTally(), big: newTally(), cold: newTally() };
    const coldQueue = [...cold];
    const runs = [
      ...Array.from({ length: COUNTS.tag }, () => tagClient(target, tallies.tag, over)),
      ...Array.from({ length: COUNTS.big }, () => bigClient(target, tallies.big, over)),
      ...Array.from({ length: COUNTS.cold }, () => coldClient(target, tallies.cold, () => coldQueue.shift(), over)),
    ];
    const stalls = Array.from({ length: COUNTS.stall }, () => stallClient(target, over, (IDLE_TIMEOUT_S + 5) * 1000));
    const drops = Array.from({ length: COUNTS.drop }, () => dropClient(target, over));
    await Promise.all(runs);
    const probed = await health.done;
    const misbehaved = { stalls: (await Promise.all(stalls)).reduce((a, b) => a + b, 0), drops: (await Promise.all(drops)).reduce((a, b) => a + b, 0) };
    clearInterval(sampler);
    const loop = await eventLoopLag(port);
    const load = { proxyCpu: (p.cpuSeconds() - cpuBefore) / SECONDS, machine: loadavg()[0] ?? NaN, cores: availableParallelism() };

    // Settle: connections from clients are closed; upstream keep-alive sockets close within 30 s.
    const settleDeadline = Date.now() + 45_000;
    while (p.fds() > before.fds && Date.now() < settleDeadline) await new Promise((r) => setTimeout(r, 500));
    const after = { rss: p.rssMiB(), fds: p.fds(), tmp: readdirSync(join(cacheDir, 'tmp')).length };

    return printReport({
      seconds: SECONDS, counts: COUNTS, tallies, misbehaved, coldPulled: cold.length - coldQueue.length, coldTotal: cold.length,
      health: probed, samples, before, after, loop, load, proxyWarnings: proxyLog.split('\n').filter((l) => l.includes('"level":40') || l.includes('"level":50') || l.includes('"level":60')),
    });
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await dist.close();
    await removeTmpDir(work);
  }
}

/** A stop condition that is false once, then true: one round of a client loop. */
function once(): () => boolean {
  let calls = 0;
  return () => calls++ > 0;
}

async function waitForHealth(port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}


main().then((code) => { process.exitCode = code; }, (err: unknown) => { console.error(err); process.exitCode = 2; });

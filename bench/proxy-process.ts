// ocimirror as a child process (`node bin/ocimirror.js serve`), so its memory can be read from /proc while the
// benchmark, its clients and their hashing run in another process.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import YAML from 'yaml';
import { freePort } from '../test/helpers/ports.js';
import { atProcessExit, makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(REPO_ROOT, 'bin', 'ocimirror.js');

// A benchmark interrupted by Ctrl-C or a crash must not leave a proxy behind.
const running = new Set<ChildProcess>();
atProcessExit(() => { for (const child of running) child.kill('SIGKILL'); });

export interface Memory { rss: number; hwm: number }

/** VmRSS and VmHWM (peak resident set, kept by the kernel) of a live process, in bytes. */
export function readMemory(pid: number): Memory | undefined {
  let status: string;
  try { status = fs.readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return undefined; }
  const bytes = (field: string) => 1024 * Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: bytes('VmRSS'), hwm: bytes('VmHWM') };
}

const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

/** User + system CPU seconds a live process has used so far. */
export function readCpuSeconds(pid: number): number {
  let stat: string;
  try { stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return NaN; }
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export interface ProxyOptions {
  /** The registry the mirror serves (host:port of the upstream Distribution) and that endpoint's URL. */
  registry: string;
  endpoint: string;
  /** Extra node flags for the proxy (e.g. --cpu-prof), from OCIMIRROR_BENCH_NODE_ARGS. */
  nodeArgs?: string[];
  sampleEveryMs?: number;
}

/** One ocimirror process with a fresh, empty cache dir; samples VmRSS every `sampleEveryMs` until stopped. */
export class ProxyProcess {
  readonly url: string;
  private readonly child: ChildProcess;
  private readonly workDir: string;
  private sampler: NodeJS.Timeout | undefined;
  private sampledMax = 0;
  private hwm = 0;
  private outputTail = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(readonly port: number, workDir: string, configFile: string, opts: ProxyOptions) {
    this.url = `http://127.0.0.1:${port}`;
    this.workDir = workDir;
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, 'serve', '--config', configFile], {
      cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' },
    });
    running.add(this.child);
    const keep = (chunk: Buffer) => { this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-8000); };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.child.once('exit', (code, signal) => { this.exit = { code, signal }; running.delete(this.child); this.stopSampling(); });
  }

  static async start(opts: ProxyOptions): Promise<ProxyProcess> {
    const workDir = makeTmpDir('ocimirror-bench-proxy-');
    const port = await freePort();
    const config = {
      server: { listen: `127.0.0.1:${port}` },
      cache: { dir: path.join(workDir, 'cache'), maxSize: '64GiB' },
      defaultRegistry: opts.registry,
      log: { level: process.env.OCIMIRROR_BENCH_LOG_LEVEL ?? 'warn' },
      mirrors: { [opts.registry]: { endpoint: [opts.endpoint] } },
    };
    const configFile = path.join(workDir, 'ocimirror.yaml');
    fs.writeFileSync(configFile, YAML.stringify(config));
    const proxy = new ProxyProcess(port, workDir, configFile, opts);
    try {
      await proxy.waitReady();
    } catch (err) {
      await proxy.stop();
      throw err;
    }
    proxy.sampler = setInterval(() => proxy.sample(), opts.sampleEveryMs ?? 50);
    return proxy;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Throws (with the proxy's last output) if the process has exited: a crash is a benchmark error. */
  assertAlive(): void {
    if (this.exit) throw new Error(`ocimirror exited (code ${this.exit.code}, signal ${this.exit.signal}):\n${this.outputTail}`);
  }

  /** Runs `fn`; a failure carries the proxy's last output (a crash or an aborted stream is explained there). */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      await new Promise((r) => setTimeout(r, 200)); // let a dying process finish writing
      const state = this.exit ? `exited (code ${this.exit.code}, signal ${this.exit.signal})` : 'still running';
      throw new Error(`${err instanceof Error ? err.message : String(err)}\nocimirror (pid ${this.pid}) ${state}; its last output:\n${this.outputTail || '(none)'}`, { cause: err });
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      this.assertAlive();
      try {
        const res = await request(`${this.url}/v2/`, { headersTimeout: 1000, bodyTimeout: 1000 });
        await res.body.dump();
        if (res.statusCode === 200) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`ocimirror not ready on ${this.url} after 20 s:\n${this.outputTail}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private sample(): void {
    const mem = readMemory(this.pid);
    if (!mem) return;
    this.sampledMax = Math.max(this.sampledMax, mem.rss);
    this.hwm = Math.max(this.hwm, mem.hwm);
  }

  private stopSampling(): void {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = undefined;
  }

  /** Peak memory so far: the highest sampled VmRSS and the kernel's VmHWM (which no sampling gap can miss). */
  memory(): { sampledMax: number; hwm: number; now: number } {
    const now = readMemory(this.pid);
    this.sample();
    return { sampledMax: this.sampledMax, hwm: this.hwm, now: now?.rss ?? NaN };
  }

  cpuSeconds(): number {
    return readCpuSeconds(this.pid);
  }

  /** SIGTERM (graceful close), SIGKILL after 5 s; removes the cache dir. */
  async stop(): Promise<void> {
    this.stopSampling();
    if (!this.exit) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    await removeTmpDir(this.workDir);
  }
}

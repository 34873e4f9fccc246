// ocimirror on a cache dir the test chooses, so it can be restarted on the same cache: in-process (restart()),
// or as a child process running the real CLI (`serve --config FILE`) that a test can kill -9 mid-fill.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import YAML from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/server/logger.js';
import { startProxy, type RunningProxy } from '../../src/server/start.js';
import { freePort } from './ports.js';
import { assertLoopbackConfig, type LogLine } from './proxy.js';
import { atProcessExit, makeTmpDir } from './tmp.js';

export type ConfigDoc = Record<string, unknown>;

/** The config document with listen and cache.dir set; refuses anything that could leave loopback. */
function withCache(doc: ConfigDoc, cacheDir: string, listen: string, env?: Record<string, string>): string {
  const copy = structuredClone(doc);
  copy.server = { ...(copy.server as ConfigDoc | undefined), listen };
  copy.cache = { ...(copy.cache as ConfigDoc | undefined), dir: cacheDir };
  const text = YAML.stringify(copy);
  assertLoopbackConfig(parseConfig('proxy-process.yaml', text, env ? { env: { ...process.env, ...env } } : {}));
  return text;
}

function lineCollector(): { sink: Writable; lines: string[]; onLine(fn: (l: LogLine) => void): void } {
  const lines: string[] = [];
  const listeners: ((l: LogLine) => void)[] = [];
  let tail = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const parts = (tail + chunk.toString('utf8')).split('\n');
      tail = parts.pop() ?? '';
      for (const part of parts.filter((l) => l.startsWith('{'))) {
        lines.push(part);
        const parsed = JSON.parse(part) as LogLine;
        for (const fn of listeners) fn(parsed);
      }
      done();
    },
  });
  return { sink, lines, onLine: (fn) => listeners.push(fn) };
}

export interface RestartableProxy {
  readonly cacheDir: string;
  readonly url: string;
  readonly running: RunningProxy;
  /** Every log line of every run so far. */
  logs(): LogLine[];
  /** Closes the proxy and starts a new one on the same cache dir (a new port). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** An in-process proxy on `cacheDir` (a fresh temp dir by default) that survives restart() with its cache. */
export async function startRestartableProxy(doc: ConfigDoc, cacheDir = makeTmpDir('ocimirror-cache-')): Promise<RestartableProxy> {
  const { sink, lines } = lineCollector();
  const config = parseConfig('restartable.yaml', withCache(doc, cacheDir, '127.0.0.1:0'));
  const boot = () => startProxy(config, { logger: createLogger('info', sink) });
  let running: RunningProxy | undefined = await boot();
  return {
    cacheDir,
    get url() { return running!.url; },
    get running() { return running!; },
    logs: () => lines.map((l) => JSON.parse(l) as LogLine),
    async restart() {
      await running?.close();
      running = undefined;
      running = await boot();
    },
    async close() {
      await running?.close();
      running = undefined;
    },
  };
}

const children = new Set<ChildProcess>();
atProcessExit(() => { for (const child of children) child.kill('SIGKILL'); });

export interface ProxyProcess {
  readonly cacheDir: string;
  readonly url: string;
  readonly pid: number;
  logs(): LogLine[];
  /** SIGKILL: no shutdown handler runs, open files stay as they are. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
  /** Sends a signal without waiting (SIGTERM starts the graceful shutdown; a second one ends its grace). */
  signal(signal: NodeJS.Signals): void;
  /** Settles when the process has exited, with its exit code (null when a signal ended it). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

/**
 * `ocimirror serve --config FILE` in a child process, from the sources (through tsx, a loader in the same process,
 * so the pid is the proxy's own and kill -9 hits it, not a wrapper). Resolves once it logs that it is listening.
 * `doc` may depend on the URL the process will listen at (a cluster replica's advertiseUrl); `env` adds variables.
 */
export async function startProxyProcess(doc: ConfigDoc | ((url: string) => ConfigDoc), cacheDir: string, opts: { env?: Record<string, string> } = {}): Promise<ProxyProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = join(makeTmpDir('ocimirror-proxy-process-'), 'ocimirror.yaml');
  const resolved = typeof doc === 'function' ? doc(url) : doc;
  writeFileSync(configFile, withCache({ ...resolved, log: { level: 'info' } }, cacheDir, `127.0.0.1:${port}`, opts.env));
  const script = `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(['serve', '--config', ${JSON.stringify(configFile)}]);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  children.add(child);
  const { sink, lines, onLine } = lineCollector();
  let stderr = '';
  child.stdout!.pipe(sink);
  child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-4000); });
  const exitStatus = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => { children.delete(child); done({ code, signal }); }));
  const exited = exitStatus.then(() => undefined);
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`proxy process not listening after 30 s:\n${stderr}`)), 30_000);
    onLine((l) => { if (l.msg === 'ocimirror listening') { clearTimeout(timer); ready(); } });
    void exited.then(() => { clearTimeout(timer); fail(new Error(`proxy process exited (${child.exitCode ?? child.signalCode}) before listening:\n${stderr}`)); });
  });
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    cacheDir, url, pid: child.pid!,
    logs: () => lines.map((l) => JSON.parse(l) as LogLine),
    kill9: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    signal: (signal) => { if (child.exitCode === null && child.signalCode === null) child.kill(signal); },
    exited: exitStatus,
  };
}

export interface BlobRead {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** sha256 of the bytes that arrived. */
  digest: string;
  bytes: number;
  /** Set when the body did not end cleanly (the proxy aborted the connection). */
  error?: Error;
}

/**
 * A streaming blob GET that hashes what arrives (50 MB layers are never buffered). `received` counts bytes as they
 * come; `pause()` stops reading (backpressure reaches the proxy), `resume()` continues, `abort()` hangs up.
 */
export class BlobClient {
  received = 0;
  readonly done: Promise<BlobRead>;
  private readonly controller = new AbortController();
  private paused: { resume: () => void } | undefined;
  private wantPause = false;
  private readonly listeners: (() => void)[] = [];

  constructor(url: string, headers: Record<string, string> = {}) {
    this.done = this.run(url, headers);
  }

  pause(): void { this.wantPause = true; }
  resume(): void { this.wantPause = false; this.paused?.resume(); this.paused = undefined; }
  abort(): void { this.controller.abort(new Error('client hung up')); }

  /** Resolves once at least `n` bytes arrived (or the request ended). */
  async until(n: number): Promise<void> {
    while (this.received < n) {
      const ended = await Promise.race([new Promise<false>((r) => this.listeners.push(() => r(false))), this.done.then(() => true, () => true)]);
      if (ended && this.received < n) return;
    }
  }

  private async run(url: string, headers: Record<string, string>): Promise<BlobRead> {
    const res = await request(url, { headers, signal: this.controller.signal, headersTimeout: 120_000, bodyTimeout: 120_000 });
    const hash = createHash('sha256');
    let error: Error | undefined;
    try {
      for await (const chunk of res.body) {
        hash.update(chunk as Buffer);
        this.received += (chunk as Buffer).length;
        for (const fn of this.listeners.splice(0)) fn();
        if (this.wantPause) await new Promise<void>((r) => { this.paused = { resume: r }; });
      }
    } catch (err) {
      error = err as Error;
    }
    for (const fn of this.listeners.splice(0)) fn();
    return { status: res.statusCode, headers: res.headers, digest: `sha256:${hash.digest('hex')}`, bytes: this.received, ...(error ? { error } : {}) };
  }
}

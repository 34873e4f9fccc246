// A server the benchmark runs as a child process, so its CPU and memory can be read from /proc apart from the
// clients'. Killed when the benchmark ends, also on Ctrl-C or a crash; its last output explains a failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { atProcessExit } from '../test/helpers/tmp.js';
import { cpuSeconds, memory, settle, type Memory } from './proc.js';

const running = new Set<ChildProcess>();
atProcessExit(() => { for (const child of running) child.kill('SIGKILL'); });

export class BenchChild {
  private readonly child: ChildProcess;
  private tail = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly lineWaiters: ((line: string) => void)[] = [];
  private partial = '';

  constructor(readonly name: string, command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this.child);
    this.child.stdout!.on('data', (chunk: Buffer) => { this.keep(chunk); this.lines(chunk); });
    this.child.stderr!.on('data', (chunk: Buffer) => this.keep(chunk));
    this.child.once('exit', (code, signal) => { this.exit = { code, signal }; running.delete(this.child); });
  }

  private keep(chunk: Buffer): void {
    this.tail = (this.tail + chunk.toString('utf8')).slice(-8000);
  }

  private lines(chunk: Buffer): void {
    const parts = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.lineWaiters.shift()?.(line);
  }

  /** The next line the process prints on stdout (how a child reports its ports). */
  nextLine(timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} printed nothing for ${timeoutMs / 1000} s:\n${this.tail}`)), timeoutMs);
      this.lineWaiters.push((line) => { clearTimeout(timer); resolve(line); });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Throws (with the last output) if the process has exited: a crash is a benchmark error. */
  assertAlive(): void {
    if (this.exit) throw new Error(`${this.name} (pid ${this.pid}) exited (code ${this.exit.code}, signal ${this.exit.signal}); its last output:\n${this.tail || '(none)'}`);
  }

  /** Polls `url` until it answers 200. */
  async waitHttp(url: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.assertAlive();
      try {
        const res = await request(url, { headersTimeout: 1000, bodyTimeout: 1000 });
        await res.body.dump();
        if (res.statusCode === 200) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`${this.name} not ready on ${url} after ${timeoutMs / 1000} s:\n${this.tail}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  memory(): Memory | undefined {
    return memory(this.pid);
  }

  /** Waits until the process is idle and `done()` holds (see proc.settle); resolves to its CPU seconds then. */
  async settle(done?: () => Promise<boolean> | boolean): Promise<number> {
    this.assertAlive();
    const cpu = await settle(this.pid, done);
    this.assertAlive();
    return cpu;
  }

  /** SIGTERM (graceful close), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.exit) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  }
}

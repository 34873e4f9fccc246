import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import YAML from 'yaml';
import { freePort } from './ports.js';
import { atProcessExit, makeTmpDir, removeTmpDir } from './tmp.js';
import { startTokenServer, type TokenServer } from './token-server.js';

export const DISTRIBUTION_BIN = process.env.OCIMIRROR_DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';

export interface DistributionOptions {
  auth?: 'none' | 'htpasswd' | 'token'; username?: string; password?: string; proxyRemoteUrl?: string; port?: number; rootDir?: string;
  /** Credentials Distribution's proxy mode sends to proxyRemoteUrl. */
  proxyUsername?: string; proxyPassword?: string;
}
export interface AccessLogLine { method: string; path: string; status: number; bytes: number }
export interface Distribution {
  readonly url: string; readonly host: string; readonly port: number; readonly rootDir: string;
  readonly token?: TokenServer; readonly username?: string; readonly password?: string;
  /** Parsed access-log lines since start (or since resetLog()). Lines arrive asynchronously: await flushLog() first. */
  accessLog(): AccessLogLine[];
  resetLog(): void;
  count(method: string, path: RegExp): number;
  /** Resolves once every request answered so far is in accessLog() (sends a marker request and waits for its line). */
  flushLog(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stop(), close the token server and remove the temp dirs this helper created. */
  close(): Promise<void>;
}

// Children outlive a test worker that vitest SIGTERMs (or that crashes) unless killed here.
const running = new Set<ChildProcess>();
atProcessExit(() => { for (const child of running) child.kill('SIGKILL'); });

// gorilla/handlers combined log: 127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "referer" "agent"
const ACCESS_LINE = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/;
const FLUSH_PATH = '/ocimirror-log-flush/';

class DistributionProcess implements Distribution {
  readonly url: string;
  readonly host: string;
  private child: ChildProcess | undefined;
  private log: AccessLogLine[] = [];
  private stdoutTail = '';
  private stderrTail = '';
  private readonly flushWaiters = new Map<string, () => void>();

  constructor(
    readonly port: number, readonly rootDir: string, private readonly configFile: string, private readonly ownedDirs: string[],
    readonly token?: TokenServer, readonly username?: string, readonly password?: string,
  ) {
    this.host = `127.0.0.1:${port}`;
    this.url = `http://${this.host}`;
  }

  accessLog(): AccessLogLine[] { return this.log.map((line) => ({ ...line })); }
  resetLog(): void { this.log = []; }
  count(method: string, pathPattern: RegExp): number {
    return this.log.filter((l) => l.method === method.toUpperCase() && pathPattern.test(l.path)).length;
  }

  async flushLog(): Promise<void> {
    const marker = crypto.randomUUID();
    const seen = new Promise<void>((resolve) => this.flushWaiters.set(marker, resolve));
    const res = await request(`${this.url}${FLUSH_PATH}${marker}`);
    await res.body.dump();
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('access log marker never appeared')), 5000).unref());
    await Promise.race([seen, timeout]).finally(() => this.flushWaiters.delete(marker));
  }

  private onStdout(chunk: Buffer): void {
    const lines = (this.stdoutTail + chunk.toString('utf8')).split('\n');
    this.stdoutTail = lines.pop() ?? '';
    for (const line of lines) {
      const match = ACCESS_LINE.exec(line);
      if (!match) continue;
      const [, method = '', reqPath = '', status = '0', bytes = '-'] = match;
      if (reqPath.startsWith(FLUSH_PATH)) { this.flushWaiters.get(reqPath.slice(FLUSH_PATH.length))?.(); continue; }
      this.log.push({ method, path: reqPath, status: Number(status), bytes: bytes === '-' ? 0 : Number(bytes) });
    }
  }

  async start(): Promise<void> {
    if (this.child) return;
    this.stderrTail = '';
    const child = spawn(DISTRIBUTION_BIN, ['serve', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    child.stdout!.on('data', (chunk: Buffer) => this.onStdout(chunk));
    child.stderr!.on('data', (chunk: Buffer) => { this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-4000); });
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
      reject(new Error(`docker-registry exited (code ${code}, signal ${signal}) before it was ready:\n${this.stderrTail}`));
    }));
    exited.catch(() => undefined); // only awaited during start-up
    await Promise.race([this.waitReady(), exited]);
    await this.flushLog();
    this.resetLog();
  }

  /** Polls GET /v2/: 200 without auth, 401 with auth both mean the HTTP server is up. */
  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const res = await request(`${this.url}/v2/`, { headersTimeout: 1000, bodyTimeout: 1000 });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) return;
      } catch { /* not listening yet */ }
      if (!this.child) return; // exited: the 'exit' promise carries the reason
      if (Date.now() > deadline) throw new Error(`docker-registry not ready on ${this.url} after 15 s:\n${this.stderrTail}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
    running.delete(child);
  }

  async close(): Promise<void> {
    await this.stop();
    await this.token?.close();
    for (const dir of this.ownedDirs) await removeTmpDir(dir);
  }
}

function writeConfig(file: string, port: number, rootDir: string, auth: Record<string, unknown> | undefined, opts: DistributionOptions): void {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', formatter: 'text', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: rootDir }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `127.0.0.1:${port}`, secret: crypto.randomBytes(16).toString('hex') },
  };
  if (auth) config.auth = auth;
  if (opts.proxyRemoteUrl) {
    config.proxy = { remoteurl: opts.proxyRemoteUrl, username: opts.proxyUsername, password: opts.proxyPassword };
  }
  fs.writeFileSync(file, YAML.stringify(config));
}

/** Starts CNCF Distribution on 127.0.0.1; it cannot listen on port 0 and report it, so we pick a free port first. */
export async function startDistribution(opts: DistributionOptions = {}): Promise<Distribution> {
  const mode = opts.auth ?? 'none';
  const workDir = makeTmpDir('ocimirror-distribution-');
  const ownedDirs = [workDir];
  const rootDir = opts.rootDir ?? path.join(workDir, 'storage');
  fs.mkdirSync(rootDir, { recursive: true });
  const username = mode === 'none' ? undefined : opts.username ?? 'tester';
  const password = mode === 'none' ? undefined : opts.password ?? 'test-password';
  let token: TokenServer | undefined;
  let auth: Record<string, unknown> | undefined;
  if (mode === 'htpasswd') {
    const htpasswdFile = path.join(workDir, 'htpasswd');
    // Distribution 2.8 only accepts bcrypt entries.
    fs.writeFileSync(htpasswdFile, execFileSync('htpasswd', ['-Bbn', username!, password!]));
    auth = { htpasswd: { realm: 'ocimirror-test', path: htpasswdFile } };
  } else if (mode === 'token') {
    token = await startTokenServer({ users: { [username!]: password! }, allowAnonymousPull: true });
    auth = { token: { realm: token.realm, service: token.service, issuer: token.issuer, rootcertbundle: token.certFile } };
  }
  const configFile = path.join(workDir, 'config.yml');
  // A free port can be taken between freePort() and bind; retry a few times unless the caller fixed the port.
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    writeConfig(configFile, port, rootDir, auth, opts);
    const registry = new DistributionProcess(port, rootDir, configFile, ownedDirs, token, username, password);
    try {
      await registry.start();
      return registry;
    } catch (err) {
      await registry.stop();
      if (opts.port !== undefined || attempt >= 2 || !/address already in use/.test(String(err))) {
        await registry.close();
        throw err;
      }
    }
  }
}

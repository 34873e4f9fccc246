// The servers the benchmark compares, each a fresh child process with its own empty storage: ocimirror,
// CNCF Distribution in proxy mode, and the plain Node references (bench/reference-server.ts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import YAML from 'yaml';
import { DISTRIBUTION_BIN } from '../test/helpers/distribution.js';
import { freePort } from '../test/helpers/ports.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { BenchChild } from './child.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** What every compared server offers the benchmark. */
export interface Server {
  readonly label: string;
  readonly url: string;
  readonly child: BenchChild;
  /** Resolves once work a transfer of `digest` left behind is over (cache commit, background fetch), to the CPU seconds then. */
  settle(digest: string): Promise<number>;
  stop(): Promise<void>;
}

async function started<T extends Server>(server: T, ready: () => Promise<void>, workDir: string): Promise<T> {
  try {
    await ready();
    return server;
  } catch (err) {
    await server.child.stop();
    await removeTmpDir(workDir);
    throw err;
  }
}

export interface OcimirrorOptions {
  registry: string; endpoint: string; nodeArgs: string[];
  /** A cache dir to use and keep (profiling warm GETs on a cache an earlier process filled); else a fresh one. */
  cacheDir?: string;
  bin?: string;
}

/** `node bin/ocimirror.js serve` with an empty cache dir, the upstream as its only endpoint and a long tag TTL. */
export async function startOcimirror(opts: OcimirrorOptions): Promise<Server> {
  const workDir = makeTmpDir('ocimirror-bench-');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = path.join(workDir, 'ocimirror.yaml');
  fs.writeFileSync(configFile, YAML.stringify({
    server: { listen: `127.0.0.1:${port}` },
    cache: { dir: opts.cacheDir ?? path.join(workDir, 'cache'), maxSize: '64GiB', tagTtl: '1h' },
    defaultRegistry: opts.registry,
    log: { level: process.env.OCIMIRROR_BENCH_LOG_LEVEL ?? 'warn' },
    mirrors: { [opts.registry]: { endpoint: [opts.endpoint] } },
  }));
  // OCIMIRROR_BENCH_BIN: another build's bin/ocimirror.js (a branch's worktree), to measure it on the same machine.
  const bin = opts.bin ?? process.env.OCIMIRROR_BENCH_BIN ?? path.join(REPO_ROOT, 'bin', 'ocimirror.js');
  const child = new BenchChild('ocimirror', process.execPath, [...opts.nodeArgs, bin, 'serve', '--config', configFile], {
    cwd: workDir, env: { ...process.env, NODE_OPTIONS: '' },
  });
  // The metrics gauge is the public signal that a fill has been verified, fsynced and renamed into the cache (a
  // scrape costs ocimirror some CPU: settle() reads the CPU figure before it).
  const fillsInProgress = async () => {
    const res = await request(`${url}/metrics`);
    const text = await res.body.text();
    return Number(/^ocimirror_cache_fills_in_progress (\d+)$/m.exec(text)?.[1] ?? NaN);
  };
  return started({
    label: 'ocimirror', url, child,
    settle: () => child.settle(async () => (await fillsInProgress()) === 0),
    async stop() { await child.stop(); await removeTmpDir(workDir); },
  }, () => child.waitHttp(`${url}/v2/`), workDir);
}

/** Distribution in proxy mode (`proxy.remoteurl`), access log off and its own empty storage. */
export async function startDistributionProxy(remoteUrl: string): Promise<Server> {
  const workDir = makeTmpDir('ocimirror-bench-distribution-');
  const rootDir = path.join(workDir, 'storage');
  fs.mkdirSync(rootDir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = path.join(workDir, 'config.yml');
  fs.writeFileSync(configFile, YAML.stringify({
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: rootDir }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `127.0.0.1:${port}`, secret: crypto.randomBytes(16).toString('hex') },
    proxy: { remoteurl: remoteUrl },
  }));
  const child = new BenchChild('Distribution proxy', DISTRIBUTION_BIN, ['serve', configFile], { cwd: workDir });
  // Its first client is served by a second upstream GET while a background one stores the blob: done when stored.
  const stored = (digest: string) => {
    const hex = digest.slice('sha256:'.length);
    return fs.existsSync(path.join(rootDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'));
  };
  return started({
    label: 'Distribution proxy', url, child,
    settle: (digest: string) => child.settle(() => stored(digest)),
    async stop() { await child.stop(); await removeTmpDir(workDir); },
  }, () => child.waitHttp(`${url}/v2/`), workDir);
}

export interface References { forward: Server; static: Server; pipe: Server; relay: Server; stop(): Promise<void> }

/**
 * One process with the plain Node references: a forwarder that GETs each blob from `upstreamUrl`, hashes it and
 * writes it to a file while streaming it, a static server piping `file` (the layer) to every GET, and a bare pipe
 * forwarder (no hash, no file) and a TCP relay to the upstream (bytes only): the ceilings of Node forwarding here.
 */
export async function startReferences(upstreamUrl: string, file: string): Promise<References> {
  const workDir = makeTmpDir('ocimirror-bench-reference-');
  const child = new BenchChild('plain Node reference', process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'reference-server.ts'), upstreamUrl, file, workDir], {
    cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: '' },
  });
  const stop = async () => { await child.stop(); await removeTmpDir(workDir); };
  let ports: { forward: number; static: number; pipe: number; relay: number };
  try {
    ports = JSON.parse(await child.nextLine()) as { forward: number; static: number; pipe: number; relay: number };
  } catch (err) {
    await stop();
    throw err;
  }
  const server = (label: string, port: number): Server => ({
    label, url: `http://127.0.0.1:${port}`, child, settle: () => child.settle(), stop,
  });
  return {
    forward: server('Node forwarder', ports.forward), static: server('Node static', ports.static), pipe: server('Node bare pipe', ports.pipe),
    relay: server('Node TCP relay', ports.relay), stop,
  };
}

// A private containerd (root, everything under its own temp dir) for e2e tests: `ctr` pulls and the CRI plugin
// both read registry hosts from `hostsDir`, as on a K3s node. Instances share nothing, so tests may run several.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertLoopbackOnly } from './hosts-toml.js';

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/** Runs a client CLI (ctr, skopeo, podman); rejects with its stderr on a non-zero exit or timeout. */
export function runTool(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const env = opts.env ? { ...process.env, ...opts.env } : process.env;
    const timeout = opts.timeoutMs ?? 60_000;
    execFile(cmd, args, { env, timeout, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const why = err.killed ? `timed out after ${timeout} ms` : `exit ${String(err.code)}`;
      reject(new Error(`${cmd} ${args.join(' ')}: ${why}\n${stderr || stdout}`, { cause: err }));
    });
  });
}

export type Snapshotter = 'overlayfs' | 'native';

export interface CtrPullOptions {
  namespace?: string;
  platform?: string;
  allPlatforms?: boolean;
  plainHttp?: boolean;
  timeoutMs?: number;
}

export interface Containerd {
  readonly socket: string;
  readonly root: string;
  /** The CRI plugin's registry config_path; also passed to `ctr --hosts-dir`. */
  readonly hostsDir: string;
  readonly logFile: string;
  readonly snapshotter: Snapshotter;
  /** `ctr images pull --hosts-dir`; `digest` is the manifest digest the namespace then holds for `ref`. */
  ctrPull(ref: string, opts?: CtrPullOptions): Promise<ToolResult & { digest?: string }>;
  /** Digest of the image `ref` in the namespace (`default`; CRI uses `k8s.io`), or undefined. */
  imageDigest(ref: string, namespace?: string): Promise<string | undefined>;
  removeImage(ref: string, namespace?: string): Promise<void>;
  /** Any other `ctr -a SOCK -n NS ...` command. */
  ctr(args: string[], opts?: { namespace?: string; timeoutMs?: number }): Promise<ToolResult>;
  log(): string;
  stop(): Promise<void>;
}

export const CRI_NAMESPACE = 'k8s.io';
const DEFAULT_NAMESPACE = 'default';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function renderConfig(dir: string, hostsDir: string, snapshotter: Snapshotter): string {
  const q = (s: string): string => JSON.stringify(s);
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
# Snapshotters that need special filesystems only add errors to the log.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = ${q(join(dir, 'c.sock'))}
[ttrpc]
  address = ${q(join(dir, 'c.sock.ttrpc'))}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, 'opt'))}
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = ${q(snapshotter)}
# Pods never run here: keep the CNI watcher off the host's /etc/cni.
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = ${q(join(dir, 'cni', 'bin'))}
  conf_dir = ${q(join(dir, 'cni', 'conf'))}
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = ${q(hostsDir)}
`;
}

async function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

// Unpacking can leave mounts behind if containerd dies mid-pull; rm -rf must not walk into them.
export function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

async function launch(dir: string, hostsDir: string, snapshotter: Snapshotter): Promise<ChildProcess> {
  const configFile = join(dir, 'config.toml');
  const logFile = join(dir, 'containerd.log');
  writeFileSync(configFile, renderConfig(dir, hostsDir, snapshotter));
  const fd = openSync(logFile, 'a');
  const child = spawn('containerd', ['--config', configFile], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  child.once('exit', () => live.delete(child));
  const socket = join(dir, 'c.sock');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`containerd exited with ${child.exitCode}:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    }
    const probe = await runTool('ctr', ['-a', socket, 'version'], { timeoutMs: 5_000 }).catch(() => undefined);
    if (probe) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`containerd did not answer on ${socket} within 30 s; log: ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function killChild(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  if (!(await waitForExit(child, 10_000))) {
    child.kill('SIGKILL');
    await waitForExit(child, 5_000);
  }
}

/** Plugin id → status ("ok" / "error" / "skip") from `ctr plugins ls`. */
async function pluginStatus(socket: string): Promise<Map<string, string>> {
  const { stdout } = await runTool('ctr', ['-a', socket, 'plugins', 'ls']);
  const status = new Map<string, string>();
  for (const line of stdout.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 4) status.set(`${cols[0]}.${cols[1]}`, cols[cols.length - 1] ?? '');
  }
  return status;
}

export async function startContainerd(opts: { hostsDir?: string; snapshotter?: Snapshotter } = {}): Promise<Containerd> {
  if (process.getuid?.() !== 0) throw new Error('startContainerd needs root (containerd mounts snapshots)');
  // Short prefix: the socket path must stay under the 107-byte unix socket limit.
  const dir = mkdtempSync('/tmp/ctd-');
  const hostsDir = opts.hostsDir ?? join(dir, 'hosts');
  mkdirSync(hostsDir, { recursive: true });
  const socket = join(dir, 'c.sock');
  const logFile = join(dir, 'containerd.log');

  let snapshotter: Snapshotter = opts.snapshotter ?? 'overlayfs';
  let child = await launch(dir, hostsDir, snapshotter);
  let plugins = await pluginStatus(socket);
  // overlayfs refuses to load on filesystems without multi-lowerdir overlay support (e.g. /tmp on overlay).
  if (snapshotter === 'overlayfs' && plugins.get('io.containerd.snapshotter.v1.overlayfs') !== 'ok' && !opts.snapshotter) {
    await killChild(child);
    snapshotter = 'native';
    child = await launch(dir, hostsDir, snapshotter);
    plugins = await pluginStatus(socket);
  }
  if (plugins.get('io.containerd.grpc.v1.cri') !== 'ok') {
    await killChild(child);
    throw new Error(`containerd CRI plugin did not load; log: ${logFile}`);
  }

  const ctr = (args: string[], o: { namespace?: string; timeoutMs?: number } = {}): Promise<ToolResult> =>
    runTool('ctr', ['-a', socket, '-n', o.namespace ?? DEFAULT_NAMESPACE, ...args], { timeoutMs: o.timeoutMs });

  async function imageDigest(ref: string, namespace = DEFAULT_NAMESPACE): Promise<string | undefined> {
    const { stdout } = await ctr(['images', 'ls'], { namespace });
    for (const line of stdout.split('\n').slice(1)) {
      const [name, , digest] = line.trim().split(/\s+/);
      if (name === ref && digest?.startsWith('sha256:')) return digest;
    }
    return undefined;
  }

  let stopped = false;
  return {
    socket,
    root: join(dir, 'root'),
    hostsDir,
    logFile,
    snapshotter,
    ctr,
    imageDigest,
    async ctrPull(ref, o = {}) {
      assertLoopbackOnly(hostsDir, ref);
      const args = ['images', 'pull', '--hosts-dir', hostsDir];
      if (o.plainHttp) args.push('--plain-http');
      if (o.allPlatforms) args.push('--all-platforms');
      else if (o.platform) args.push('--platform', o.platform);
      args.push(ref);
      const res = await ctr(args, { namespace: o.namespace, timeoutMs: o.timeoutMs ?? 120_000 });
      return { ...res, digest: await imageDigest(ref, o.namespace) };
    },
    async removeImage(ref, namespace) {
      await ctr(['images', 'rm', '--sync', ref], { namespace }).catch((err: Error) => {
        if (!/not found/i.test(err.message)) throw err;
      });
    },
    log: () => readFileSync(logFile, 'utf8'),
    async stop() {
      if (stopped) return;
      stopped = true;
      await killChild(child);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

// Writes containerd registry host configs (`<config_path>/<registry>/hosts.toml`), the file K3s renders from
// registries.yaml and that both the CRI plugin (config_path) and `ctr --hosts-dir` read.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'smol-toml';

export type HostCapability = 'pull' | 'resolve' | 'push';

export interface HostEntry {
  url: string;
  capabilities?: HostCapability[];
  ca?: string;
  skipVerify?: boolean;
  overridePath?: boolean;
}

export interface HostsTomlOptions {
  /** The registry's own endpoint, tried after every [host]: point it at a dead loopback port in tests. */
  server: string;
  hosts: HostEntry[];
}

/**
 * Directory containerd looks in for `registry`. containerd 1.6 tries `<host>_<port>_`, then `<host>:<port>`,
 * then `_default`; we write the literal `host:port`, as K3s does on Linux.
 */
export function hostsDirFor(hostsDir: string, registry: string): string {
  if (registry === '*') return join(hostsDir, '_default');
  if (!/^[A-Za-z0-9._\-[\]:]+$/.test(registry)) {
    throw new Error(`expected a registry host[:port] or "_default", got ${JSON.stringify(registry)}`);
  }
  return join(hostsDir, registry);
}

// JSON string escapes are valid TOML basic-string escapes, so this quotes any value safely.
const q = (s: string): string => JSON.stringify(s);

export function renderHostsToml(opts: HostsTomlOptions): string {
  const lines = [`server = ${q(opts.server)}`, ''];
  for (const host of opts.hosts) {
    lines.push(`[host.${q(host.url)}]`);
    lines.push(`  capabilities = [${(host.capabilities ?? ['pull', 'resolve']).map(q).join(', ')}]`);
    if (host.ca !== undefined) lines.push(`  ca = ${q(host.ca)}`);
    if (host.skipVerify !== undefined) lines.push(`  skip_verify = ${host.skipVerify}`);
    if (host.overridePath !== undefined) lines.push(`  override_path = ${host.overridePath}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** Writes the hosts.toml and returns its path. Hosts are tried in the given order, `server` last. */
export function writeHostsToml(hostsDir: string, registry: string, opts: HostsTomlOptions): string {
  const dir = hostsDirFor(hostsDir, registry);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'hosts.toml');
  writeFileSync(file, renderHostsToml(opts));
  return file;
}

const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;
const LOOPBACK_URL = /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/;

export const isLoopbackHost = (host: string): boolean => LOOPBACK_HOST.test(host);

/** Registry host of an image reference (`docker://` optional), with Docker Hub's implicit default. */
export function registryOf(ref: string): string {
  const name = ref.replace(/^docker:\/\//, '');
  const first = name.split('/')[0] ?? '';
  return name.includes('/') && (/[.:]/.test(first) || first === 'localhost') ? first : 'docker.io';
}

/**
 * Throws unless containerd pulling `ref` with this hosts dir can only reach loopback: the hosts.toml it would
 * pick must name nothing but loopback URLs; with none, containerd contacts the registry itself.
 */
export function assertLoopbackOnly(hostsDir: string, ref: string): void {
  const registry = registryOf(ref);
  const port = /^(.*):(\d+)$/.exec(registry);
  // containerd 1.6 lookup order: <host>_<port>_, <host>:<port>, _default.
  const candidates = [
    ...(port ? [join(hostsDir, `${port[1]}_${port[2]}_`, 'hosts.toml')] : []),
    join(hostsDir, registry, 'hosts.toml'),
    join(hostsDir, '_default', 'hosts.toml'),
  ];
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    if (isLoopbackHost(registry)) return;
    throw new Error(`no hosts.toml for ${registry} in ${hostsDir}: containerd would contact ${registry} directly`);
  }
  const doc = parse(readFileSync(file, 'utf8')) as { server?: unknown; host?: Record<string, unknown> };
  // Without `server`, containerd falls back to the registry itself.
  const server = typeof doc.server === 'string' ? doc.server : `https://${registry}`;
  const outside = [server, ...Object.keys(doc.host ?? {})].filter((u) => !LOOPBACK_URL.test(u));
  if (outside.length > 0) throw new Error(`${file} lets a pull of ${ref} leave this machine: ${outside.join(', ')}`);
}

/** Installs generated hosts.toml files (`<registry>/hosts.toml`, as `generate hosts-toml` names them), optionally only some registries. */
export function installHostsTomlFiles(hostsDir: string, files: readonly { path: string; text: string }[], registries?: readonly string[]): void {
  for (const f of files) {
    if (registries && !registries.includes(dirname(f.path))) continue;
    const path = join(hostsDir, f.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.text);
  }
}

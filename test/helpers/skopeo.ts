// skopeo as a mirror client: it pings /v2/, sends no `ns`, and with a registries.conf mirror rewrites the path
// (`/v2/docker.io/library/x/...`), which is the routing podman and CRI-O nodes depend on.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse } from 'smol-toml';
import { runTool, type ToolResult } from './containerd.js';
import { isLoopbackHost, registryOf } from './hosts-toml.js';

export interface SkopeoRunOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** `skopeo ARGS`; rejects with stderr on a non-zero exit. */
export function skopeo(args: string[], opts: SkopeoRunOptions = {}): Promise<ToolResult> {
  return runTool('skopeo', args, { env: opts.env, timeoutMs: opts.timeoutMs ?? 120_000 });
}

// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF (podman reads it); only its global flag works.
const confArgs = (registriesConf?: string): string[] => (registriesConf ? ['--registries-conf', registriesConf] : []);

/**
 * Refuses a reference that could send skopeo or podman off this machine: its registry must be on loopback,
 * or be a prefix in `registriesConf` whose location and mirrors are all on loopback. Tests never reach docker.io.
 */
export function assertNoOutsideRegistry(ref: string, registriesConf?: string): void {
  const host = registryOf(ref);
  if (isLoopbackHost(host)) return;
  if (!registriesConf) throw new Error(`${ref} names ${host}: pass a registriesConf with loopback mirrors, or name 127.0.0.1:PORT`);
  const doc = parse(readFileSync(registriesConf, 'utf8')) as { registry?: { prefix?: string; location?: string; mirror?: { location?: string }[] }[] };
  const entry = (doc.registry ?? []).find((r) => (r.prefix ?? r.location ?? '').split('/')[0] === host);
  if (!entry) throw new Error(`${registriesConf} has no [[registry]] for ${host}: ${ref} would go to ${host} itself`);
  const locations = [entry.location ?? host, ...(entry.mirror ?? []).map((m) => m.location ?? '')];
  const outside = locations.filter((l) => !isLoopbackHost(l.split('/')[0] ?? ''));
  if (outside.length > 0) throw new Error(`${registriesConf} lets ${ref} leave this machine: ${outside.join(', ')}`);
}

export interface CopyToOciOptions {
  /** Copy every platform of an index (`--all`) instead of the host's one. */
  all?: boolean;
  registriesConf?: string;
  /** Default false: every test registry and proxy here speaks plain HTTP on loopback. */
  srcTlsVerify?: boolean;
  srcCreds?: string;
  srcCertDir?: string;
  /** `--preserve-digests`: keep the manifest as the registry sent it (skopeo would otherwise compress plain tar layers). */
  preserveDigests?: boolean;
  timeoutMs?: number;
}

/** Copies `src` (e.g. `docker://127.0.0.1:5001/library/x:1.0`) into the OCI layout `ociDir` as `tag`. */
export async function skopeoCopyToOci(src: string, ociDir: string, tag: string, opts: CopyToOciOptions = {}): Promise<void> {
  // A test signs nothing; --insecure-policy keeps it independent of the host's /etc/containers/policy.json.
  if (src.startsWith('docker://')) assertNoOutsideRegistry(src, opts.registriesConf);
  const args = [...confArgs(opts.registriesConf), '--insecure-policy', 'copy', `--src-tls-verify=${opts.srcTlsVerify ?? false}`];
  if (opts.all) args.push('--all');
  if (opts.srcCreds) args.push('--src-creds', opts.srcCreds);
  if (opts.srcCertDir) args.push('--src-cert-dir', opts.srcCertDir);
  if (opts.preserveDigests) args.push('--preserve-digests');
  args.push(src, `oci:${ociDir}:${tag}`);
  await skopeo(args, { timeoutMs: opts.timeoutMs });
}

/** Pushes `oci:ociDir:tag` to `dest` (`docker://127.0.0.1:PORT/repo:tag`) over plain HTTP. */
export async function skopeoCopyFromOci(ociDir: string, tag: string, dest: string, opts: { all?: boolean } = {}): Promise<void> {
  assertNoOutsideRegistry(dest);
  const args = ['--insecure-policy', 'copy', '--dest-tls-verify=false'];
  if (opts.all) args.push('--all');
  // preserve-digests: a changed manifest digest would make every digest assertion meaningless.
  args.push('--preserve-digests', `oci:${ociDir}:${tag}`, dest);
  await skopeo(args);
}

/**
 * sha256 of the manifest bytes `ref` resolves to (`skopeo inspect --raw`). `--no-tags` because plain
 * `inspect` lists tags from the registry named in the reference, ignoring registries.conf mirrors.
 */
export async function skopeoManifestDigest(
  ref: string,
  opts: { registriesConf?: string; tlsVerify?: boolean; creds?: string } = {},
): Promise<string> {
  assertNoOutsideRegistry(ref, opts.registriesConf);
  const args = [...confArgs(opts.registriesConf), 'inspect', '--raw', '--no-tags', `--tls-verify=${opts.tlsVerify ?? false}`];
  if (opts.creds) args.push('--creds', opts.creds);
  args.push(ref);
  const { stdout } = await skopeo(args);
  // Manifests are UTF-8 JSON, so the decoded string re-encodes to the exact bytes skopeo wrote.
  return `sha256:${createHash('sha256').update(stdout, 'utf8').digest('hex')}`;
}

export interface RegistriesConfEntry {
  prefix: string;
  /** Where the registry itself is: a dead loopback port in tests, so only the mirrors can answer. */
  location: string;
  mirrors: { location: string; insecure?: boolean }[];
  insecure?: boolean;
  pullFromMirror?: 'all' | 'digest-only' | 'tag-only';
}

/** Writes a containers-registries.conf(5) with no unqualified search, so short names never reach a real registry. */
export function writeRegistriesConf(file: string, entries: RegistriesConfEntry[]): void {
  const q = (s: string): string => JSON.stringify(s);
  const lines = ['unqualified-search-registries = []', ''];
  for (const e of entries) {
    lines.push('[[registry]]', `prefix = ${q(e.prefix)}`, `location = ${q(e.location)}`);
    if (e.insecure !== undefined) lines.push(`insecure = ${e.insecure}`);
    for (const m of e.mirrors) {
      lines.push('[[registry.mirror]]', `location = ${q(m.location)}`, `insecure = ${m.insecure ?? true}`);
      if (e.pullFromMirror) lines.push(`pull-from-mirror = ${q(e.pullFromMirror)}`);
    }
    lines.push('');
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, lines.join('\n'));
}

// Rootful podman with private storage, config and policy under a temp dir: it only pulls (no containers, no
// cgroups, no network setup), so it needs none of podman's recommended packages (uidmap, slirp4netns, ...).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTool, unmountUnder, type ToolResult } from './containerd.js';
import { assertNoOutsideRegistry } from './skopeo.js';

export interface PodmanPullOptions {
  /** A containers-registries.conf (see writeRegistriesConf); default: one with no registries at all. */
  registriesConf?: string;
  /** Default false: test registries and proxies speak plain HTTP. */
  tlsVerify?: boolean;
  certDir?: string;
  creds?: string;
  timeoutMs?: number;
}

export interface Podman {
  readonly root: string;
  pull(ref: string, opts?: PodmanPullOptions): Promise<ToolResult>;
  /** Manifest digest of the stored image `ref`, or undefined when podman has no such image. */
  imageDigest(ref: string): Promise<string | undefined>;
  /** Any other `podman ...` command against this storage. */
  run(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<ToolResult>;
  cleanup(): Promise<void>;
}

export async function makePodman(): Promise<Podman> {
  if (process.getuid?.() !== 0) throw new Error('makePodman needs root (rootless podman needs uidmap and subuids)');
  const dir = mkdtempSync('/tmp/pdm-');
  const root = join(dir, 'root');
  const runroot = join(dir, 'run');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const policy = join(dir, 'policy.json');
  const emptyRegistries = join(dir, 'registries.conf');
  // Private config files so the host's /etc/containers (storage driver options, mirrors, signatures) never applies.
  writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  writeFileSync(emptyRegistries, 'unqualified-search-registries = []\n');
  // podman stats REGISTRY_AUTH_FILE before pulling: it must exist, even empty.
  writeFileSync(join(dir, 'auth.json'), '{"auths":{}}\n');
  // A network directory of its own: `system reset` at cleanup removes every network podman knows, which would
  // otherwise be the host's (harbor_harbor of a compose test running beside this one).
  writeFileSync(join(dir, 'containers.conf'), `[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n[network]\nnetwork_config_dir = ${JSON.stringify(join(dir, 'networks'))}\n`);
  writeFileSync(
    join(dir, 'storage.conf'),
    `[storage]\ndriver = "overlay"\ngraphroot = ${JSON.stringify(root)}\nrunroot = ${JSON.stringify(runroot)}\n`,
  );
  const baseEnv = {
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: emptyRegistries,
    // Credentials from the host's auth.json must never leak into a test.
    REGISTRY_AUTH_FILE: join(dir, 'auth.json'),
  };
  const globalArgs = ['--root', root, '--runroot', runroot, '--tmpdir', tmp, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];

  const run = (args: string[], o: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ToolResult> =>
    runTool('podman', [...globalArgs, ...args], { env: { ...baseEnv, ...o.env }, timeoutMs: o.timeoutMs ?? 120_000 });

  let cleaned = false;
  return {
    root,
    run,
    async pull(ref, opts = {}) {
      assertNoOutsideRegistry(ref, opts.registriesConf);
      const args = ['pull', '--signature-policy', policy, `--tls-verify=${opts.tlsVerify ?? false}`];
      if (opts.certDir) args.push('--cert-dir', opts.certDir);
      if (opts.creds) args.push('--creds', opts.creds);
      args.push(ref);
      const env = opts.registriesConf ? { CONTAINERS_REGISTRIES_CONF: opts.registriesConf } : undefined;
      return run(args, { env, timeoutMs: opts.timeoutMs });
    },
    async imageDigest(ref) {
      try {
        const { stdout } = await run(['image', 'inspect', '--format', '{{.Digest}}', ref]);
        return stdout.trim() || undefined;
      } catch (err) {
        if (/image not known|no such image/i.test((err as Error).message)) return undefined;
        throw err;
      }
    },
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      // reset unmounts the overlay bind mount containers/storage keeps on <root>/overlay.
      await run(['system', 'reset', '--force'], { timeoutMs: 60_000 }).catch(() => undefined);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

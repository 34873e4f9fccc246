// Rootful podman on the host's own storage, where scripts/make-node-base-image.sh put the offline base image, with
// the settings of scripts/podman-env.sh: build the project's image, run containers, make volumes and networks.
// Everything a test makes is named by uniqueName() and removed by removeContainerThings(), or at process exit.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { withBuildLock } from './build-lock.js';
import { runTool, type ToolResult } from './containerd.js';
import { atProcessExit } from './tmp.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BASE_IMAGE = 'docker.io/library/node:20-bookworm-slim';

let confEnv: Record<string, string> | undefined;

/** CONTAINERS_CONF as scripts/podman-env.sh writes it: the one place these settings live. */
export function podmanEnv(): Record<string, string> {
  confEnv ??= { CONTAINERS_CONF: execFileSync('bash', ['-c', `. "${ROOT}/scripts/podman-env.sh" && printf %s "$CONTAINERS_CONF"`], { encoding: 'utf8' }) };
  return confEnv;
}

export function podman(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ToolResult> {
  return runTool('podman', args, { env: { ...podmanEnv(), ...opts.env }, timeoutMs: opts.timeoutMs ?? 120_000 });
}

/** Exit code of a podman command, for the ones whose failure is an answer (healthcheck run, image exists). */
export function podmanStatus(args: string[]): number {
  return spawnSync('podman', args, { env: { ...process.env, ...podmanEnv() }, stdio: 'ignore', timeout: 60_000 }).status ?? -1;
}

/** Throws (never skips) unless this is root with the base image built. */
export function requireContainerHost(suite: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${suite} needs root: rootful podman builds and runs the image (run the suite as root)`);
  if (podmanStatus(['image', 'exists', BASE_IMAGE]) !== 0) {
    throw new Error(`${suite} needs the offline base image ${BASE_IMAGE}: run scripts/setup-test-host.sh (it builds it once)`);
  }
}

const made = { containers: new Set<string>(), volumes: new Set<string>(), networks: new Set<string>(), images: new Set<string>() };

/** A name no other run on this host uses at the same time; remembered for removal. */
export function uniqueName(prefix: string, kind: keyof typeof made): string {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  made[kind].add(name);
  return name;
}

export function remember(kind: keyof typeof made, name: string): void {
  made[kind].add(name);
}

function removeArgs(): string[][] {
  return [
    ...[...made.containers].map((c) => ['rm', '-f', '-t', '0', c]),
    ...[...made.volumes].map((v) => ['volume', 'rm', '-f', v]),
    ...[...made.networks].map((n) => ['network', 'rm', '-f', n]),
    ...[...made.images].map((i) => ['rmi', '-f', i]),
  ];
}

/** Removes every container, volume, network and image tag this process made (the build cache stays). */
export async function removeContainerThings(): Promise<void> {
  await withBuildLock('removing test containers and images', async () => {
    for (const args of removeArgs()) await podman(args, { timeoutMs: 60_000 }).catch(() => undefined);
  });
  for (const set of Object.values(made)) set.clear();
}
atProcessExit(() => { for (const args of removeArgs()) podmanStatus(args); });

/** `podman build --pull=never --format docker` of the project's Dockerfile (the OCI format would drop HEALTHCHECK). */
export async function buildProjectImage(tag: string): Promise<{ ms: number }> {
  remember('images', tag);
  return withBuildLock(`building ${tag}`, async () => {
    const started = performance.now();
    await podman(['build', '--pull=never', '--format', 'docker', '-t', tag, ROOT], { timeoutMs: 600_000 });
    return { ms: performance.now() - started };
  });
}

export async function imageSize(ref: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '--format', '{{.Size}}', ref])).stdout.trim());
}

export async function inspect(container: string, format: string): Promise<string> {
  return (await podman(['inspect', '--format', format, container])).stdout.trim();
}

export async function volumePath(volume: string): Promise<string> {
  return (await podman(['volume', 'inspect', '--format', '{{.Mountpoint}}', volume])).stdout.trim();
}

/**
 * Runs the container's HEALTHCHECK (`podman healthcheck run`; without systemd podman schedules none itself) until it
 * passes; resolves with the milliseconds from `since`.
 */
export async function waitHealthy(container: string, since: number, timeoutMs = 60_000): Promise<number> {
  for (;;) {
    if (podmanStatus(['healthcheck', 'run', container]) === 0) return performance.now() - since;
    if (performance.now() - since > timeoutMs) {
      const logs = await podman(['logs', container]).catch((e: Error) => ({ stdout: e.message, stderr: '' }));
      throw new Error(`${container} not healthy after ${timeoutMs} ms:\n${logs.stdout}${logs.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** podman_pin_bridge from scripts/podman-env.sh: keeps the bridge's MAC, so running containers keep their DNS. */
export async function pinBridge(network: string): Promise<void> {
  await runTool('bash', ['-c', `. "${ROOT}/scripts/podman-env.sh" && podman_pin_bridge "$1"`, 'pin', network], { env: podmanEnv() });
}

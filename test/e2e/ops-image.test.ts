// The project's Dockerfile, built with podman and run as users run it: uid 1000, read-only root, cache on a volume,
// HEALTHCHECK healthy, a host containerd pulling through it with the right digests, and `podman stop` clean (the
// fill in progress aborted, nothing half-written on the volume, exit 0 before podman's 10 s SIGKILL). Prints the
// image and base sizes, the build time and the time to healthy. Needs root (rootful podman, containerd).
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { BASE_IMAGE, buildProjectImage, imageSize, inspect, podman, removeContainerThings, requireContainerHost, uniqueName, volumePath, waitHealthy } from '../helpers/containers.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { writeHostsToml } from '../helpers/hosts-toml.js';
import { buildImage, buildLargeLayerImage, type Blob, type BuiltImage } from '../helpers/images.js';
import { deadPort, freePort } from '../helpers/ports.js';
import { BlobClient } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/eventually.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const STALL_AT = 2 * MiB;
const IMAGE = `localhost/ocimirror:${uniqueName('e2e', 'images').slice(4)}`;
let dist: Distribution;
let up: FaultUpstream;
let containerd: Containerd;
let app: BuiltImage;
let stalled: Blob;
let work: string;
let container: string;
let volume: string;
let url: string;
let startedAt: number;

beforeAll(async () => {
  requireContainerHost('ops-image');
  work = makeTmpDir('ocimirror-image-');
  const build = await buildProjectImage(IMAGE);
  const [size, base] = await Promise.all([imageSize(IMAGE), imageSize(BASE_IMAGE)]);
  console.log(`[image] ${IMAGE}: ${(size / 1e6).toFixed(1)} MB on a ${(base / 1e6).toFixed(1)} MB base (+${((size - base) / 1e6).toFixed(1)} MB); podman build ${(build.ms / 1000).toFixed(1)} s with the base present`);

  dist = await startDistribution();
  app = await buildImage({ format: 'oci', label: 'image-e2e' });
  await pushImage(dist.url, 'library/app', '1.0', app);
  const big = await buildLargeLayerImage({ format: 'oci', sizeBytes: 16 * MiB, seed: 1204, compression: 'none', dir: work });
  stalled = big.layers[0]!;
  up = await startFaultUpstream();
  up.add('library/big', '1.0', big);
  up.fault({ method: 'GET', path: new RegExp(`/blobs/${stalled.digest}$`) }, { kind: 'stall-body', afterBytes: STALL_AT });

  // --network host: the container reaches the upstreams on 127.0.0.1 and listens there on a port of our choosing.
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  writeFileSync(join(work, 'ocimirror.yaml'), [
    `server: {listen: "127.0.0.1:${port}"}`,
    'cache: {dir: /var/lib/ocimirror}',
    'upstream: {readTimeout: 5m}',
    `mirrors: {docker.io: {endpoint: ["${dist.url}"]}, slow.test: {endpoint: ["${up.url}"]}}`,
  ].join('\n'));
  container = uniqueName('ocimirror-e2e', 'containers');
  volume = uniqueName('ocimirror-e2e-cache', 'volumes');
  await podman(['volume', 'create', volume]);
  startedAt = performance.now();
  // No --init: ocimirror is PID 1 and handles SIGTERM itself. --read-only-tmpfs=false: read-only as Docker has it.
  await podman(['run', '-d', '--name', container, '--read-only', '--read-only-tmpfs=false', '--network', 'host',
    '-e', `OCIMIRROR_HEALTH_URL=${url}/healthz`, '-v', `${join(work, 'ocimirror.yaml')}:/etc/ocimirror/ocimirror.yaml:ro`,
    '-v', `${volume}:/var/lib/ocimirror`, IMAGE]);
  await waitFor('/healthz to answer', async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true, 60_000);
  console.log(`[image] /healthz answers ${((performance.now() - startedAt) / 1000).toFixed(1)} s after podman run`);
}, 900_000);

afterAll(async () => {
  await removeContainerThings();
  await Promise.allSettled([containerd?.stop(), dist?.close(), up?.close()]);
  if (work) await removeTmpDir(work);
});

const exec = async (...cmd: string[]) => (await podman(['exec', container, ...cmd])).stdout.trim();
const cacheFiles = async (sub: string) => { const dir = join(await volumePath(volume), sub); return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : []; };

describe('the container image', () => {
  it('keeps HEALTHCHECK (docker format) and turns healthy', async () => {
    expect((await podman(['image', 'inspect', '--format', '{{json .HealthCheck.Test}}', IMAGE])).stdout).toContain('OCIMIRROR_HEALTH_URL');
    const ms = await waitHealthy(container, startedAt);
    console.log(`[image] healthy ${(ms / 1000).toFixed(1)} s after podman run`);
    expect(await inspect(container, '{{.State.Health.Status}}')).toBe('healthy');
  });

  it('carries production dependencies only, each of which loads', async () => {
    expect(await exec('ls', '/app/node_modules')).not.toMatch(/typescript|vitest|playwright/);
    // The Dockerfile prunes type declarations and source maps: every dependency must still import.
    const load = "const deps = Object.keys(JSON.parse(require('fs').readFileSync('package.json')).dependencies);"
      + "Promise.all(deps.map((d) => import(d))).then(() => console.log(deps.length + ' loaded'))";
    expect(await exec('node', '-e', load)).toMatch(/^\d+ loaded$/);
    expect(await exec('ls', '/app')).toBe(['bin', 'dist', 'node_modules', 'package-lock.json', 'package.json'].join('\n'));
  });

  it('runs as uid 1000 on a read-only root filesystem, with the cache on the volume', async () => {
    expect(await exec('sh', '-c', 'grep -E "^(Uid|Gid):" /proc/1/status | tr -s "\\t" " "')).toBe('Uid: 1000 1000 1000 1000\nGid: 1000 1000 1000 1000');
    await expect(podman(['exec', container, 'touch', '/app/probe'])).rejects.toThrow(/Read-only file system/);
    await expect(podman(['exec', container, 'touch', '/tmp/probe'])).rejects.toThrow(/Read-only file system/);
    expect(await exec('sh', '-c', 'touch /var/lib/ocimirror/probe && rm /var/lib/ocimirror/probe && echo writable')).toBe('writable');
  });

  it('serves a host containerd: it pulls through the container with the right digests, and the blobs land on the volume', async () => {
    containerd = await startContainerd();
    writeHostsToml(containerd.hostsDir, 'docker.io', { server: `http://127.0.0.1:${await deadPort()}`, hosts: [{ url }] });
    const pulled = await containerd.ctrPull('docker.io/library/app:1.0');
    expect(pulled.digest).toBe(app.manifestDigest);
    // A blob is renamed into place after its last byte went out (durability happens behind the client): wait for it.
    const path = (digest: string) => join('sha256', digest.slice(7, 9), digest.slice(7));
    await waitFor('every blob committed on the volume', async () => { const stored = await cacheFiles('blobs'); return app.blobs.every((b) => stored.includes(path(b.digest))); });
  });

  it('stops cleanly on `podman stop`: the running fill aborted, nothing half-written left, exit 0 within the 10 s', async () => {
    const client = new BlobClient(`${url}/v2/library/big/blobs/${stalled.digest}?ns=slow.test`);
    await client.until(STALL_AT - 1);
    await waitFor('the fill\'s temp file on the volume', async () => (await cacheFiles('tmp')).length === 1);
    const started = performance.now();
    await podman(['stop', '-t', '10', container], { timeoutMs: 30_000 });
    console.log(`[image] podman stop took ${((performance.now() - started) / 1000).toFixed(1)} s (server.shutdownGrace 5 s, then the stalled fill is aborted)`);
    // podman sends SIGKILL after 10 s, which would make the exit code 137.
    expect(await inspect(container, '{{.State.ExitCode}}')).toBe('0');
    expect((await client.done).error, 'the client of the aborted fill must not see a clean end').toBeDefined();
    expect(await cacheFiles('tmp')).toEqual([]);
    expect((await cacheFiles('blobs')).some((f) => f.endsWith(stalled.digest.slice(7)))).toBe(false);
    const logs = (await podman(['logs', container])).stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
    expect(logs.filter((l) => l.msg === 'stopped')).toEqual([expect.objectContaining({ fillsAborted: 1 })]);
  });
});

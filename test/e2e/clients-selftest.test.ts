// Proves the real-client harness against a plain CNCF Distribution before any proxy test relies on it:
// every client must pull the pushed image with the pushed manifest digest, with no route to a real registry.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRI_NAMESPACE, startContainerd, type Containerd } from '../helpers/containerd.js';
import { criClient } from '../helpers/cri.js';
import { assertLoopbackOnly, writeHostsToml } from '../helpers/hosts-toml.js';
import { makePodman, type Podman } from '../helpers/podman.js';
import { skopeoCopyFromOci, skopeoCopyToOci, skopeoManifestDigest, writeRegistriesConf } from '../helpers/skopeo.js';

const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A port nothing listens on: bound then released, so connecting to it is refused at once. */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return address.port;
}

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mtime: new Date(0) }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes a one-layer OCI image layout tagged `tag` and returns its manifest digest. */
async function writeOciLayout(dir: string, tag: string): Promise<string> {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer | string): { digest: string; size: number } => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest.slice(7)), data);
    return { digest, size: Buffer.byteLength(data) };
  };
  const layerTar = await tarOf({ 'hello.txt': 'hello from the clients self-test\n' });
  const layer = put(gzipSync(layerTar));
  const config = put(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] } }),
  );
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  });
  const m = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return m.digest;
}

async function startRegistry(dir: string, port: number): Promise<{ child: ChildProcess; logFile: string }> {
  const config = join(dir, 'registry.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: {accesslog: {disabled: false}, level: warn}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'storage')}}, delete: {enabled: true}}`,
      `http: {addr: "127.0.0.1:${port}", secret: selftest}`,
    ].join('\n'),
  );
  const logFile = join(dir, 'registry.log');
  const fd = openSync(logFile, 'a');
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited:\n${readFileSync(logFile, 'utf8')}`);
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
    if (ok) return { child, logFile };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('docker-registry did not answer within 10 s');
}

describe('real clients against a plain Distribution', () => {
  if (process.getuid?.() !== 0) throw new Error('clients self-test needs root: containerd and rootful podman mount overlays');

  let work: string;
  let registry: ChildProcess | undefined;
  let registryLog: string;
  let port: number;
  let dead: number;
  let pushed: string;
  let containerd: Containerd | undefined;
  let podman: Podman | undefined;
  const repo = (): string => `127.0.0.1:${port}/library/hello:1.0`;

  beforeAll(async () => {
    work = mkdtempSync('/tmp/clients-selftest-');
    port = await unusedPort();
    do dead = await unusedPort();
    while (dead === port);
    const started = await startRegistry(work, port);
    registry = started.child;
    registryLog = started.logFile;
    pushed = await writeOciLayout(join(work, 'src'), '1.0');
    await skopeoCopyFromOci(join(work, 'src'), '1.0', `docker://${repo()}`);
    containerd = await startContainerd();
  }, 60_000);

  afterAll(async () => {
    await containerd?.stop();
    await podman?.cleanup();
    if (registry && registry.exitCode === null) {
      registry.kill('SIGTERM');
      await new Promise((r) => registry?.once('exit', r));
    }
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('the registry serves the manifest digest we built', async () => {
    expect(await skopeoManifestDigest(`docker://${repo()}`)).toBe(pushed);
  });

  it('the harness refuses pulls that could leave the machine', async () => {
    const hostsDir = join(work, 'guard-hosts');
    expect(() => assertLoopbackOnly(hostsDir, 'docker.io/library/hello:1.0')).toThrow(/no hosts.toml for docker.io/);
    expect(() => assertLoopbackOnly(hostsDir, 'alpine')).toThrow(/docker.io/);
    writeHostsToml(hostsDir, 'docker.io', { server: 'https://registry-1.docker.io', hosts: [{ url: `http://127.0.0.1:${port}` }] });
    expect(() => assertLoopbackOnly(hostsDir, 'docker.io/library/hello:1.0')).toThrow(/registry-1\.docker\.io/);
    writeHostsToml(hostsDir, 'docker.io', { server: `http://127.0.0.1:${dead}`, hosts: [{ url: `http://127.0.0.1:${port}` }] });
    expect(() => assertLoopbackOnly(hostsDir, 'docker.io/library/hello:1.0')).not.toThrow();
    expect(() => assertLoopbackOnly(hostsDir, repo())).not.toThrow();
    await expect(containerd!.ctrPull('ghcr.io/x/y:1')).rejects.toThrow(/no hosts.toml for ghcr.io/);
  });

  it('ctr pulls through a hosts.toml whose server is dead', async () => {
    const c = containerd!;
    writeHostsToml(c.hostsDir, `127.0.0.1:${port}`, { server: `http://127.0.0.1:${dead}`, hosts: [{ url: `http://127.0.0.1:${port}` }] });
    const res = await c.ctrPull(repo());
    expect(res.digest).toBe(pushed);
    expect(await c.imageDigest(repo())).toBe(pushed);
    await c.removeImage(repo());
    expect(await c.imageDigest(repo())).toBeUndefined();
  }, 60_000);

  it('ctr pulls docker.io/... from the mirror host and sends ns=docker.io', async () => {
    const c = containerd!;
    writeHostsToml(c.hostsDir, 'docker.io', { server: `http://127.0.0.1:${dead}`, hosts: [{ url: `http://127.0.0.1:${port}` }] });
    const res = await c.ctrPull('docker.io/library/hello:1.0', { namespace: 'mirror' });
    expect(res.digest).toBe(pushed);
    expect(readFileSync(registryLog, 'utf8')).toMatch(/HEAD \/v2\/library\/hello\/manifests\/1\.0\?ns=docker\.io /);
  }, 60_000);

  it('ctr fails (not hangs) when neither host has the image', async () => {
    await expect(containerd!.ctrPull(`127.0.0.1:${port}/library/absent:1.0`)).rejects.toThrow(/not found|connection refused/);
  }, 60_000);

  it('CRI PullImage pulls and unpacks through the hosts dir', async () => {
    const c = containerd!;
    const cri = criClient(c.socket, { hostsDir: c.hostsDir });
    try {
      const imageRef = await cri.pullImage(repo());
      expect(imageRef).toMatch(/^sha256:[0-9a-f]{64}$/);
      const status = await cri.imageStatus(repo());
      expect(status?.id).toBe(imageRef);
      expect(status?.repoDigests).toContain(`127.0.0.1:${port}/library/hello@${pushed}`);
      expect(status?.repoTags).toContain(repo());
      expect(Number(status?.size)).toBeGreaterThan(0);
      expect(await c.imageDigest(repo(), CRI_NAMESPACE)).toBe(pushed);
      await cri.removeImage(repo());
      expect(await cri.imageStatus(repo())).toBeUndefined();
    } finally {
      cri.close();
    }
  }, 60_000);

  it('skopeo copies to an OCI layout with the same manifest digest', async () => {
    const dir = join(work, 'copy');
    await skopeoCopyToOci(`docker://${repo()}`, dir, '1.0');
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([pushed]);
  }, 60_000);

  it('skopeo and podman resolve docker.io through a registries.conf mirror', async () => {
    const conf = join(work, 'registries.conf');
    writeRegistriesConf(conf, [
      { prefix: 'docker.io', location: `127.0.0.1:${dead}`, mirrors: [{ location: `127.0.0.1:${port}`, insecure: true }] },
    ]);
    expect(await skopeoManifestDigest('docker://docker.io/library/hello:1.0', { registriesConf: conf })).toBe(pushed);
    await expect(skopeoManifestDigest('docker://quay.io/x/y:1', { registriesConf: conf })).rejects.toThrow(/no \[\[registry\]\] for quay.io/);
    podman = await makePodman();
    await podman.pull('docker.io/library/hello:1.0', { registriesConf: conf });
    expect(await podman.imageDigest('docker.io/library/hello:1.0')).toBe(pushed);
    expect(await podman.imageDigest('docker.io/library/absent:1.0')).toBeUndefined();
  }, 90_000);
});

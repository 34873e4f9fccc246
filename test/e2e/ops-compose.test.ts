// The README's compose section, run: a Harbor stand-in built like the seed tutorial's (its own compose project,
// network harbor_harbor, HTTPS from a cfssl CA, htpasswd, a k3s project), then the project's own docker-compose.yml,
// unchanged but for an override file, brought up with docker-compose against podman's API. ocimirror reaches
// `harbor` by name with the CA and credentials, and a host containerd with the hosts.toml that
// `ocimirror generate hosts-toml` writes pulls an image that exists only in that Harbor. Needs root (podman).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { withBuildLock } from '../helpers/build-lock.js';
import { startCompose, type Compose } from '../helpers/compose.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { inspect, podman, remember, removeContainerThings, requireContainerHost, ROOT, waitHealthy } from '../helpers/containers.js';
import { HARBOR_NETWORK, makeHarborStandin, type HarborStandin } from '../helpers/harbor-standin.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { fetchFrom } from '../helpers/proxy.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

// What nodes call the Harbor; ocimirror reaches it as https://harbor, the container's name on harbor_harbor.
const REGISTRY = 'harbor.example.com';
const suffix = Math.random().toString(36).slice(2, 8);
// docker-compose v1 keeps only [a-z0-9] of a project name.
const PROJECT = `ocimirrore2e${suffix}`;
const IMAGE = `localhost/ocimirror:compose-${suffix}`;
const CONTAINER = `${PROJECT}_ocimirror_1`;
let compose: Compose;
let harbor: HarborStandin;
let containerd: Containerd | undefined;
let nginx: BuiltImage;
let work: string;
let url: string;
let up: () => Promise<unknown>;

beforeAll(async () => {
  requireContainerHost('ops-compose');
  nginx = await buildImage({ format: 'docker', label: 'harbor-k3s-nginx' });
  harbor = await makeHarborStandin([{ repo: 'k3s/nginx', tag: 'latest', image: nginx }]);
  compose = await startCompose();
  await harbor.up(compose);

  work = makeTmpDir('ocimirror-compose-');
  mkdirSync(join(work, 'certs'));
  copyFileSync(harbor.caFile, join(work, 'certs', 'harbor-ca.pem'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  writeFileSync(join(work, 'ocimirror.yaml'), [
    'server:',
    '  listen: "0.0.0.0:5000"',
    `  url: "${url}"`,
    'cache: {dir: /var/lib/ocimirror}',
    `mirrors: {${REGISTRY}: {endpoint: ["https://harbor"]}}`,
    'configs:',
    '  harbor:',
    `    auth: {username: ${harbor.username}, password: "${harbor.password}"}`,
    '    tls: {ca_file: /etc/ocimirror/certs/harbor-ca.pem}',
  ].join('\n'));
  // The override replaces the mounted configuration and certificates (same targets) and names the image tag.
  writeFileSync(join(work, 'docker-compose.override.yml'), [
    'version: "3.8"',
    'services:',
    '  ocimirror:',
    `    image: ${IMAGE}`,
    '    volumes:',
    `      - ${join(work, 'ocimirror.yaml')}:/etc/ocimirror/ocimirror.yaml:ro`,
    `      - ${join(work, 'certs')}:/etc/ocimirror/certs:ro`,
  ].join('\n'));
  remember('images', IMAGE);
  const files = ['-p', PROJECT, '-f', join(ROOT, 'docker-compose.yml'), '-f', join(work, 'docker-compose.override.yml')];
  up = () => withBuildLock('docker-compose up --build', () => compose.run([...files, 'up', '-d', '--build'], { OCIMIRROR_PUBLISH: `127.0.0.1:${port}` }));
  const down = () => compose.run([...files, 'down', '-v', '-t', '2']);
  teardown.push(down);
  const started = performance.now();
  await up();
  const upDone = performance.now();
  const healthy = await waitHealthy(CONTAINER, upDone, 120_000);
  console.log(`[compose] docker-compose up -d --build took ${((upDone - started) / 1000).toFixed(1)} s; healthy ${(healthy / 1000).toFixed(1)} s after it returned`);
}, 900_000);

const teardown: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await containerd?.stop();
  for (const step of teardown) await step().catch((e: Error) => console.error(e.message));
  if (harbor && compose) await harbor.down(compose).catch((e: Error) => console.error(e.message));
  await compose?.close();
  await removeContainerThings();
  await harbor?.remove();
  if (work) await removeTmpDir(work);
});

describe('docker-compose.yml beside a Harbor stand-in', () => {
  it('runs the project\'s service healthy, on its own network and on harbor_harbor', async () => {
    expect(await inspect(CONTAINER, '{{.State.Health.Status}}')).toBe('healthy');
    const networks = await inspect(CONTAINER, '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}');
    expect(networks.trim().split(' ').sort()).toEqual([`${PROJECT}_default`, HARBOR_NETWORK].sort());
    expect(await inspect(CONTAINER, '{{.Config.User}}')).toBe('node');
  });

  it('reaches `harbor` by name: Harbor insists on HTTPS with its cfssl CA and on credentials', async () => {
    const probe = "fetch('https://harbor/v2/').then((r) => console.log(r.status), (e) => console.log(e.cause?.code ?? e.message))";
    const run = async (env: string[]) => (await podman(['exec', ...env, CONTAINER, 'node', '-e', probe])).stdout.trim();
    expect(await run([])).toMatch(/CERT|SIGNATURE|ISSUER/);
    expect(await run(['-e', 'NODE_EXTRA_CA_CERTS=/etc/ocimirror/certs/harbor-ca.pem'])).toBe('401');
  });

  it('serves a host containerd, configured by `ocimirror generate hosts-toml`, an image that exists only in Harbor', async () => {
    containerd = await startContainerd();
    expect(await main(['generate', 'hosts-toml', '--config', join(work, 'ocimirror.yaml'), '--out', containerd.hostsDir, '--no-fallback'])).toBe(0);
    expect(existsSync(join(containerd.hostsDir, REGISTRY, 'hosts.toml'))).toBe(true);
    const pulled = await containerd.ctrPull(`${REGISTRY}/k3s/nginx:latest`);
    expect(pulled.digest).toBe(nginx.manifestDigest);
    const access = await harbor.logs();
    expect(access).toMatch(/"GET \/v2\/k3s\/nginx\/manifests\/sha256:[0-9a-f]{64} HTTP\/1\.1" 200/);
    for (const blob of nginx.blobs) expect(access).toContain(`"GET /v2/k3s/nginx/blobs/${blob.digest} HTTP/1.1" 200`);
  });

  it('shows Harbor up on the status page, with the pull and no credentials', async () => {
    const res = await fetchFrom(url, '/status.json');
    expect(res.status).toBe(200);
    const status = JSON.parse(res.body.toString('utf8')) as { registries: { registry: string; endpoints: { name: string; state: string; requests: number }[] }[]; pulls: { image: string }[] };
    const failedLines = (await podman(['logs', CONTAINER])).stdout.split('\n').filter((l) => /"status":5\d\d/.test(l)).join('\n');
    expect(status.registries, `answers with 5xx:\n${failedLines}`).toEqual([{ registry: REGISTRY, requests: expect.any(Number), failures: 0, endpoints: [expect.objectContaining({ name: 'https://harbor', state: 'up', failures: 0 })] }]);
    expect(status.pulls.map((p) => p.image)).toContain(`${REGISTRY}/k3s/nginx:latest`);
    const page = await fetchFrom(url, '/');
    expect(page.body.toString('utf8')).toContain('data-endpoint="https://harbor" data-state="up"');
    expect(res.body.toString('utf8') + page.body.toString('utf8')).not.toContain(harbor.password);
  });

  it('comes back up with the same command after `docker-compose down`, the cache volume kept', async () => {
    await compose.run(['-p', PROJECT, '-f', join(ROOT, 'docker-compose.yml'), '-f', join(work, 'docker-compose.override.yml'), 'down', '-t', '10']);
    const started = performance.now();
    await up();
    await waitHealthy(CONTAINER, started, 120_000);
    const res = await fetchFrom(url, `/v2/k3s/nginx/blobs/${nginx.layers[0]!.digest}?ns=${REGISTRY}`);
    expect(res.status).toBe(200);
    const stats = (await fetchFrom(url, '/status.json')).body.toString('utf8');
    expect(JSON.parse(stats).cache).toMatchObject({ hits: 1, misses: 0 });
  });
});

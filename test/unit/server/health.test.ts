// /healthz and /readyz via app.inject(): alive vs ready (config, writable cache dir, an endpoint up per mirror),
// and neither collides with the registry API.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RegistryService } from '../../../src/oci/service.js';
import { buildApp } from '../../../src/server/app.js';
import { healthPlugin } from '../../../src/server/health.js';

const manifestCalls: string[] = [];
const service = {
  async manifest(req: { repo: string; ref: string }) {
    manifestCalls.push(`${req.repo}:${req.ref}`);
    return { digest: `sha256:${'3'.repeat(64)}`, mediaType: 'application/json', size: 2, body: Buffer.from('{}') };
  },
} as unknown as RegistryService;

let app: FastifyInstance;
let dir: string;
let cacheDir: string;
let mirrors: { registry: string; endpoints: { name: string; isDown: boolean }[] }[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ocimirror-health-'));
  cacheDir = join(dir, 'cache');
  mkdirSync(cacheDir);
  manifestCalls.length = 0;
  mirrors = [
    { registry: 'docker.io', endpoints: [{ name: 'https://a', isDown: true }, { name: 'https://b', isDown: false }] },
    { registry: 'ghcr.io', endpoints: [{ name: 'https://c', isDown: false }] },
  ];
  app = buildApp({
    service, via: '1.1 test', logger: pino({ level: 'silent' }),
    routing: { defaultRegistry: 'docker.io', resolve: (r: string) => r },
    plugins: [healthPlugin({ configSource: '/etc/ocimirror/ocimirror.yaml', cacheDir, mirrors: () => mirrors })],
  });
  await app.ready();
});
afterEach(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('/healthz', () => {
  it('answers 200 for GET and HEAD while the process runs, whatever the upstreams do', async () => {
    for (const m of mirrors) for (const e of m.endpoints) e.isDown = true;
    const get = await app.inject('/healthz');
    expect(get.statusCode).toBe(200);
    expect(get.json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('/readyz', () => {
  it('is ready when the cache is writable and every mirror has an endpoint up, and leaves no probe file', async () => {
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(200);
    const body = res.json() as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'ready',
      config: { ok: true, detail: '/etc/ocimirror/ocimirror.yaml' },
      cache: { ok: true },
      mirrors: { 'docker.io': { ok: true, endpoints: { 'https://a': 'down', 'https://b': 'up' } }, 'ghcr.io': { ok: true } },
    });
    expect(readdirSync(join(cacheDir, 'tmp'))).toEqual([]);
  });

  it('is not ready (503) when every endpoint of one mirror is known-dead, and names that mirror', async () => {
    mirrors[1]!.endpoints[0]!.isDown = true;
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not ready', mirrors: { 'docker.io': { ok: true }, 'ghcr.io': { ok: false, detail: 'every endpoint is marked down' } } });
  });

  it('is not ready when the cache dir cannot be written', async () => {
    // A file where the directory should be fails for root too (root writes through mode bits).
    rmSync(cacheDir, { recursive: true });
    writeFileSync(cacheDir, 'not a directory');
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not ready', cache: { ok: false, detail: expect.stringMatching(/ENOTDIR/) } });
  });
});

describe('routes', () => {
  it('neither collides with /v2: an image called healthz or readyz is still a registry request', async () => {
    const res = await app.inject('/v2/library/healthz/manifests/readyz?ns=docker.io');
    expect(res.statusCode).toBe(200);
    expect(manifestCalls).toEqual(['library/healthz:readyz']);
  });
});

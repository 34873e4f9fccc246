// Proxy-side Basic authentication: htpasswd (bcrypt) users, 401 with a Basic challenge and OCI JSON otherwise,
// health left open, bad files refused with their line.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/server/app.js';
import { authPlugin, loadHtpasswd } from '../../../src/server/auth.js';
import type { RegistryService } from '../../../src/oci/service.js';
import { makeTmpDir, removeTmpDir } from '../../helpers/tmp.js';

const service: RegistryService = {
  manifest: async () => ({ digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, body: Buffer.from('{}') }),
  blob: async () => { throw new Error('not used'); },
  tags: async () => { throw new Error('not used'); },
  referrers: async () => { throw new Error('not used'); },
};
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('proxy authentication', () => {
  let dir: string;
  let app: FastifyInstance;
  beforeAll(async () => {
    dir = makeTmpDir('ocimirror-auth-');
    const line = execFileSync('htpasswd', ['-Bbn', 'node', 's3cret-pass'], { encoding: 'utf8' }).trim();
    writeFileSync(join(dir, 'htpasswd'), `# nodes\n${line}\n`);
    app = buildApp({
      service, via: '1.1 test', logger: pino({ level: 'silent' }),
      routing: { defaultRegistry: 'docker.io', resolve: (r: string) => (r === 'docker.io' ? r : undefined) },
      plugins: [authPlugin({ htpasswd: join(dir, 'htpasswd'), realm: 'mirror' }), (a) => { a.get('/healthz', async () => 'ok'); }],
    });
    await app.ready();
  });
  afterAll(async () => { await app.close(); await removeTmpDir(dir); });

  it('answers /v2/ and every API route with 401, a Basic challenge and OCI JSON without credentials', async () => {
    for (const url of ['/v2/', '/v2/library/x/manifests/1.0']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="mirror"');
      expect(res.json().errors[0].code).toBe('UNAUTHORIZED');
    }
  });

  it('refuses a wrong password or an unknown user', async () => {
    expect((await app.inject({ url: '/v2/', headers: { authorization: basic('node', 'wrong') } })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v2/', headers: { authorization: basic('other', 's3cret-pass') } })).statusCode).toBe(401);
  });

  it('serves with the right credentials (twice: the second check comes from the verified cache)', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await app.inject({ url: '/v2/library/x/manifests/1.0', headers: { authorization: basic('node', 's3cret-pass') } });
      expect(res.statusCode).toBe(200);
    }
  });

  it('leaves health routes open', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('refuses an htpasswd file with a non-bcrypt hash, naming its line', () => {
    writeFileSync(join(dir, 'md5'), 'ok:$2y$05$kddNcsMSsMnyytmpt4sqcesdgcv7hRDk20bmRiNGujm0A8HYwtU86\nold:$apr1$abc$def\n');
    expect(() => loadHtpasswd(join(dir, 'md5'))).toThrow(/md5:2:1: expected user:bcrypt-hash .*"old"/);
  });
});

describe('server.auth in the configuration', () => {
  it('needs a readable htpasswd file, said with its position', async () => {
    const { parseConfig } = await import('../../../src/config/load.js');
    expect(() => parseConfig('c.yaml', 'server:\n  auth: {realm: x}\nmirrors: {docker.io: {endpoint: []}}\n'))
      .toThrow(/c\.yaml:2:9: server\.auth\.htpasswd: expected the path of an htpasswd file/);
    expect(() => parseConfig('c.yaml', 'server:\n  auth: {htpasswd: /nonexistent/htpasswd}\nmirrors: {docker.io: {endpoint: []}}\n'))
      .toThrow(/c\.yaml:2:20: server\.auth\.htpasswd: expected a readable file/);
  });
});

describe('password checks under a guessing flood (issue 8 rule 9)', () => {
  let dir: string;
  let app: FastifyInstance;
  const running = { now: 0, max: 0, calls: 0 };
  let restore: () => void;
  beforeAll(async () => {
    dir = makeTmpDir('ocimirror-auth-flood-');
    writeFileSync(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', '-C', '5', 'node', 's3cret-pass'], { encoding: 'utf8' }));
    const bcrypt = (await import('bcryptjs')).default;
    const compare = bcrypt.compare;
    // Count checks in flight: the limiter must keep them at two whatever the flood.
    bcrypt.compare = (async (password: string, hash: string) => {
      running.calls++;
      running.max = Math.max(running.max, ++running.now);
      try { return await compare(password, hash); } finally { running.now--; }
    }) as unknown as typeof compare;
    restore = () => { bcrypt.compare = compare; };
    app = buildApp({
      service, via: '1.1 test', logger: pino({ level: 'silent' }),
      routing: { defaultRegistry: 'docker.io', resolve: (r: string) => (r === 'docker.io' ? r : undefined) },
      plugins: [authPlugin({ htpasswd: join(dir, 'htpasswd'), realm: 'mirror' }), (a) => { a.get('/healthz', async () => 'ok'); }],
    });
    await app.ready();
  });
  afterAll(async () => { restore(); await app.close(); await removeTmpDir(dir); });

  it('a wrong password repeated is checked once, then refused from memory', async () => {
    const before = running.calls;
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/v2/', headers: { authorization: basic('node', 'guess-1') } })).statusCode).toBe(401);
    expect(running.calls - before).toBe(1);
  });

  it('a flood of different guesses runs two checks at a time, answers the excess with 429, and /healthz meanwhile', async () => {
    running.max = 0;
    const flood = Array.from({ length: 200 }, (_, i) => app.inject({ url: '/v2/', headers: { authorization: basic('node', `flood-${i}`) } }));
    const health = await app.inject({ url: '/healthz' });
    expect(health.statusCode).toBe(200);
    const statuses = (await Promise.all(flood)).map((r) => r.statusCode);
    expect(running.max).toBe(2);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
  });

  it('an unknown user costs a check too (no way to tell which users exist)', async () => {
    const before = running.calls;
    expect((await app.inject({ url: '/v2/', headers: { authorization: basic('nobody', 'x') } })).statusCode).toBe(401);
    expect(running.calls - before).toBe(1);
  });

  it.each(['basic', 'BASIC', 'bAsIc'])('the %s scheme is accepted (RFC 7235: case-insensitive)', async (scheme) => {
    const token = Buffer.from('node:s3cret-pass').toString('base64');
    expect((await app.inject({ url: '/v2/', headers: { authorization: `${scheme} ${token}` } })).statusCode).toBe(200);
  });

  it('every path but health, readiness and metrics needs the password', async () => {
    expect((await app.inject({ url: '/nowhere' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('bcrypt cost', () => {
  it('above 12 is refused at load, with file:line', () => {
    const dir = makeTmpDir('ocimirror-auth-cost-');
    try {
      const ok = execFileSync('htpasswd', ['-Bbn', '-C', '5', 'cheap', 'x'], { encoding: 'utf8' }).trim();
      const dear = ok.replace(/^cheap:\$2y\$05\$/, 'dear:$2y$13$');
      writeFileSync(join(dir, 'htpasswd'), `${ok}\n${dear}\n`);
      expect(() => loadHtpasswd(join(dir, 'htpasswd'))).toThrow(/htpasswd:2:1: expected a bcrypt cost of at most 12, got 13 for "dear"/);
      writeFileSync(join(dir, 'htpasswd'), `${ok.replace('$05$', '$12$')}\n`);
      expect(loadHtpasswd(join(dir, 'htpasswd')).size).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

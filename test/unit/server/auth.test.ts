// Proxy-side Basic authentication: htpasswd (bcrypt) users, 401 with a Basic challenge and OCI JSON otherwise,
// health left open, bad files refused with their line.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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

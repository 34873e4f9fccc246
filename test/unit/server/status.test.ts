// The status page: what renderStatus draws from a snapshot (rate limits included), that the browser copy of it
// draws the same, the snapshot's derived figures, the ring of recent pulls, and the routes behind server.auth.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/server/app.js';
import { authPlugin } from '../../../src/server/auth.js';
import { healthPlugin } from '../../../src/server/health.js';
import type { RegistryService } from '../../../src/oci/service.js';
import { RecentPulls, redactUserinfo, statusSnapshot, type StatusSnapshot, type StatusSource } from '../../../src/server/status-data.js';
import { RENDERER_SOURCE, statusPlugin } from '../../../src/server/status-page.js';
import { renderStatus } from '../../../src/server/status-render.js';
import { makeTmpDir, removeTmpDir } from '../../helpers/tmp.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const MiB = 1024 * 1024;
const DIGEST = `sha256:${'b'.repeat(64)}`;

function snapshot(over: Partial<StatusSnapshot> = {}): StatusSnapshot {
  return {
    now: NOW,
    registries: [{
      registry: 'docker.io', requests: 12, failures: 1,
      endpoints: [
        { name: 'https://harbor.example.com/v2/dockerhub', state: 'down', nextProbeAt: NOW + 8000, lastError: 'connect ECONNREFUSED <10.0.0.5>', requests: 3, failures: 3 },
        { name: 'https://registry-1.docker.io', state: 'up', requests: 9, failures: 0 },
      ],
    }],
    cache: { bytes: 5 * 1024 * MiB, maxSize: 20 * 1024 * MiB, entries: 42, hits: 30, misses: 10, hitRatio: 0.75, bytesFromCache: 3 * MiB, bytesFromUpstream: MiB },
    fills: [{ digest: DIGEST, repo: 'library/nginx', size: 64 * MiB, written: 16 * MiB, startedAt: NOW - 4000, clients: 2, endpoint: 'https://registry-1.docker.io', bytesPerSecond: 4 * MiB }],
    pulls: [{ at: NOW - 3000, image: 'docker.io/library/nginx:1.25', client: '10.1.2.3', cache: 'miss', status: 200 }],
    rateLimits: [],
    ...over,
  };
}

/** A page fragment as a DOM-less reader sees it: the attributes the browser test also reads. */
const attrs = (html: string, name: string) => [...html.matchAll(new RegExp(`${name}="([^"]*)"`, 'g'))].map((m) => m[1]);

describe('renderStatus', () => {
  const html = renderStatus(snapshot());

  it('lists each registry with its endpoints in order, their state, counts, next probe and last error', () => {
    expect(attrs(html, 'data-registry')).toEqual(['docker.io']);
    expect(attrs(html, 'data-endpoint')).toEqual(['https://harbor.example.com/v2/dockerhub', 'https://registry-1.docker.io']);
    expect(attrs(html, 'data-state')).toEqual(['down', 'up']);
    expect(html).toContain('12 requests · 1 failed');
    expect(html).toContain('3 requests · 3 failures · next probe in 8 s');
    expect(html).toContain('last error: connect ECONNREFUSED &#60;10.0.0.5&#62;');
  });

  it('draws the cache as a bar against maxSize, with the hit ratio and the bytes by source', () => {
    expect(html).toContain(`aria-label="cache size" aria-valuemin="0" aria-valuemax="${20 * 1024 * MiB}" aria-valuenow="${5 * 1024 * MiB}"><span style="width:25.0%">`);
    expect(html).toContain('5.0 GiB of 20 GiB (25%) · 42 entries');
    expect(html).toContain('75% <small>30 hits, 10 misses</small>');
    expect(html).toContain('<dt>served from cache</dt><dd>3.0 MiB</dd>');
  });

  it('draws a progress bar for each running fill, with bytes, speed and clients', () => {
    expect(html).toContain(`aria-label="fill ${DIGEST}" aria-valuemin="0" aria-valuemax="${64 * MiB}" aria-valuenow="${16 * MiB}"><span style="width:25.0%">`);
    expect(html).toContain('16 MiB of 64 MiB · 4.0 MiB/s · 2 clients · started 4 s ago');
    expect(renderStatus(snapshot({ fills: [] }))).toContain('No fills running.');
  });

  it('lists the recent pulls, newest first, with client, cache result and age', () => {
    expect(html).toContain('<span class="cache miss">miss</span> <code>docker.io/library/nginx:1.25</code><small>10.1.2.3 · 3 s ago</small>');
  });

  it('shows Docker Hub rate-limit headroom only when it is known', () => {
    expect(html).not.toContain('rate-limits');
    const limited = renderStatus(snapshot({ rateLimits: [{ endpoint: 'https://registry-1.docker.io', limit: 100, remaining: 37, resetAt: NOW + 3_600_000 }] }));
    expect(limited).toContain('<section id="rate-limits"><h2>Docker Hub rate limits</h2>');
    expect(limited).toContain('aria-valuemax="100" aria-valuenow="37"');
    expect(limited).toContain('37 of 100 requests left · resets in 1 h 0 min');
    const throttled = renderStatus(snapshot({ rateLimits: [{ endpoint: 'https://registry-1.docker.io', remaining: 0, retryAfterUntil: NOW + 90_000 }] }));
    expect(throttled).not.toContain('role="progressbar" aria-label="rate limit');
    expect(throttled).toContain('0 requests left</small><div class="error">429 Too Many Requests: asked again in 1 min</div>');
  });

  it('escapes everything that comes from outside', () => {
    const hostile = renderStatus(snapshot({ pulls: [{ at: NOW, image: 'x/"><script>alert(1)</script>', client: '::1', cache: 'hit', status: 200 }] }));
    expect(hostile).not.toContain('<script>');
    expect(hostile).toContain('x/&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;');
  });

  it('is the same function in the page: its source text runs on its own and draws the same', () => {
    const inBrowser = new Function(`${RENDERER_SOURCE}\nreturn renderStatus;`)() as typeof renderStatus;
    const withLimits = snapshot({ rateLimits: [{ endpoint: 'e', limit: 10, remaining: 1 }] });
    expect(inBrowser(withLimits)).toBe(renderStatus(withLimits));
  });
});

describe('statusSnapshot', () => {
  const source = (over: Partial<StatusSource> = {}): StatusSource => ({
    now: () => NOW,
    registries: async () => [{ registry: 'r.example', requests: 0, failures: 0, endpoints: [{ name: 'https://r.example', state: 'down', lastError: 'GET https://bob:hunter2@r.example/v2/: 503', requests: 1, failures: 1 }] }],
    cache: () => ({ bytes: 0, maxSize: 100, entries: 0, hits: 0, misses: 0, bytesFromCache: 0, bytesFromUpstream: 0 }),
    fills: () => [{ digest: DIGEST, repo: 'a', size: 10 * MiB, written: 6 * MiB, startedAt: NOW - 2000, clients: 1 }],
    recentPulls: () => [],
    ...over,
  });

  it('derives speed and hit ratio (none before the first lookup), and has no rate limits unless a source gives them', async () => {
    const s = await statusSnapshot(source());
    expect(s.fills[0]!.bytesPerSecond).toBe(3 * MiB);
    expect(s.cache.hitRatio).toBeNull();
    expect(s.rateLimits).toEqual([]);
    const known = await statusSnapshot(source({ rateLimits: () => [{ endpoint: 'x', limit: 100, remaining: 5 }] }));
    expect(known.rateLimits).toEqual([{ endpoint: 'x', limit: 100, remaining: 5 }]);
  });

  it('never carries credentials that an error text echoes in a URL', async () => {
    const s = await statusSnapshot(source());
    expect(JSON.stringify(s)).not.toContain('hunter2');
    expect(s.registries[0]!.endpoints[0]!.lastError).toBe('GET https://[redacted]@r.example/v2/: 503');
    expect(redactUserinfo('no url here')).toBe('no url here');
  });
});

describe('RecentPulls', () => {
  it('keeps the newest ones, newest first, in a fixed-size ring', () => {
    const ring = new RecentPulls(3);
    for (let i = 1; i <= 5; i++) ring.add({ at: i, image: `img:${i}`, client: 'c', cache: 'hit', status: 200 });
    expect(ring.list().map((p) => p.image)).toEqual(['img:5', 'img:4', 'img:3']);
  });
});

describe('status routes', () => {
  let dir: string;
  let app: FastifyInstance;
  const pulls = new RecentPulls();
  const service: RegistryService = {
    manifest: async () => ({ digest: DIGEST, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, body: Buffer.from('{}'), cache: 'hit' }),
    blob: async () => { throw new Error('not used'); },
    tags: async () => { throw new Error('not used'); },
    referrers: async () => { throw new Error('not used'); },
  };
  const basic = `Basic ${Buffer.from('ops:s3cret-pass').toString('base64')}`;

  beforeAll(async () => {
    dir = makeTmpDir('ocimirror-status-');
    writeFileSync(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', 'ops', 's3cret-pass']));
    const src: StatusSource = {
      registries: async () => [], cache: () => snapshot().cache, fills: () => [], recentPulls: () => pulls.list(),
    };
    app = buildApp({
      service, via: '1.1 test', logger: pino({ level: 'silent' }),
      routing: { defaultRegistry: 'docker.io', resolve: (r: string) => (r === 'docker.io' ? r : undefined) },
      plugins: [
        authPlugin({ htpasswd: join(dir, 'htpasswd'), realm: 'mirror' }),
        healthPlugin({ configSource: 'test', cacheDir: dir, mirrors: () => [] }),
        statusPlugin(src, pulls),
      ],
    });
    await app.ready();
  });
  afterAll(async () => { await app.close(); await removeTmpDir(dir); });

  it('protects /, /status and /status.json with server.auth (encoded paths too), and leaves health open', async () => {
    for (const url of ['/', '/status', '/status.json', '/st%61tus', '/status.json?x=1']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="mirror"');
    }
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('serves the page as HTML and the snapshot as JSON to an authenticated client', async () => {
    const page = await app.inject({ url: '/status', headers: { authorization: basic } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('<main id="status"><p class="asof">');
    expect(page.body).toContain("fetch('status.json'");
    const root = await app.inject({ url: '/', headers: { authorization: basic } });
    expect(root.statusCode).toBe(200);
    expect(root.body).toContain('<main id="status"><p class="asof">');
    const json = await app.inject({ url: '/status.json', headers: { authorization: basic } });
    expect(json.json()).toMatchObject({ cache: { entries: 42, hitRatio: 0.75 }, registries: [], fills: [] });
  });

  it('records a pull for a HEAD or a GET by tag, not for the GETs by digest that follow', async () => {
    const headers = { authorization: basic };
    await app.inject({ method: 'HEAD', url: '/v2/library/nginx/manifests/1.25?ns=docker.io', headers });
    await app.inject({ url: `/v2/library/nginx/manifests/${DIGEST}?ns=docker.io`, headers });
    await app.inject({ url: '/v2/library/alpine/manifests/3.19', headers });
    expect(pulls.list().map(({ image, cache, status, client }) => ({ image, cache, status, client }))).toEqual([
      { image: 'docker.io/library/alpine:3.19', cache: 'hit', status: 200, client: '127.0.0.1' },
      { image: 'docker.io/library/nginx:1.25', cache: 'hit', status: 200, client: '127.0.0.1' },
    ]);
  });
});

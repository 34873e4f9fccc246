// Imported tag mappings in the manifest cache: hits for every client kind within tagTtl; then served whenever no
// upstream answers (down, or not knowing the tag), however long ago they were imported — neither staleIfError nor
// staleIfNotFound bounds them — and replaced by the first answer an upstream gives. A mapping upstream confirmed
// once is held to those windows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/cache/fs-store.js';
import { FsManifestStore } from '../../../src/cache/fs-manifest-store.js';
import { FsTagStore } from '../../../src/cache/fs-tag-store.js';
import { CLIENT_ACCEPTS, setImportedTag } from '../../../src/cache/imported-tags.js';
import { CacheIndex } from '../../../src/cache/lru-index.js';
import { ManifestCache } from '../../../src/cache/manifest-cache.js';
import { CacheStats } from '../../../src/cache/stats.js';
import { digestOf } from '../../../src/oci/digest.js';
import { OciError } from '../../../src/oci/errors.js';
import { MANIFEST_TYPES, normaliseAccept } from '../../../src/oci/mediatypes.js';
import type { ManifestRequest, ManifestResult } from '../../../src/oci/service.js';
import type { ProxyService } from '../../../src/upstream/service.js';
import type { MirrorUpstream } from '../../../src/upstream/fallthrough.js';
import { parseConfig } from '../../../src/config/load.js';
import { policiesOf } from '../../../src/config/policies.js';

const YEAR = 365 * 86_400_000;
const log = pino({ level: 'silent' });
const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPES.ociManifest, config: {}, layers: [] }));
const digest = digestOf(body);
const newer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPES.ociManifest, config: {}, layers: [], v: 2 }));
const ref = { registry: 'docker.io', repo: 'library/app', tag: '1.0' };

/** An upstream that fails (outage or not found) or answers with `newer`, as the test says. */
class Upstream {
  mode: 'down' | 'not-found' | 'up' = 'down';
  calls = 0;
  async manifest(req: ManifestRequest): Promise<ManifestResult> {
    this.calls++;
    if (this.mode === 'down') throw new OciError('UNAVAILABLE', { registry: req.registry }, { status: 503 });
    // As ProxyService reports it: every endpoint answered 404.
    if (this.mode === 'not-found') throw new OciError('MANIFEST_UNKNOWN', undefined, { cause: { allNotFound: true } });
    return { digest: digestOf(newer), mediaType: MANIFEST_TYPES.ociManifest, size: newer.length, ...(req.method === 'GET' ? { body: newer } : {}), endpoint: 'up' };
  }
}

let dir: string;
let now: number;
let upstream: Upstream;
let cache: ManifestCache;
let tags: FsTagStore;
let stats: CacheStats;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imported-tags-'));
  const blobs = new FsBlobStore(dir);
  const manifests = new FsManifestStore(dir, log);
  tags = new FsTagStore(dir, log);
  await Promise.all([blobs.init(), manifests.init(), tags.init()]);
  await manifests.put(digest, MANIFEST_TYPES.ociManifest, body);
  const index = new CacheIndex({ blob: blobs, manifest: manifests, tag: { delete: async () => undefined, touch: async () => undefined } }, { maxSize: 1e9, maxEntries: 1000 }, log);
  now = Date.now();
  upstream = new Upstream();
  stats = new CacheStats();
  // Defaults: tagTtl 60s, staleIfError 7d, staleIfNotFound 0 (never).
  const policies = policiesOf(parseConfig('t.yaml', 'mirrors: {docker.io: {endpoint: ["http://127.0.0.1:1"]}}'));
  cache = new ManifestCache({ manifests, tags, index, upstream: upstream as unknown as ProxyService, stats, log, policies, now: () => now });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mirror = { rateLimitHold: () => false } as unknown as MirrorUpstream;
const ask = (accept: string, method: 'GET' | 'HEAD' = 'GET') => cache.manifest({ registry: ref.registry, repo: ref.repo, mirror, ref: ref.tag, method, accept: normaliseAccept(accept) });

describe('imported tag mappings', () => {
  it('are hits for every client kind within cache.tagTtl, without asking upstream', async () => {
    await setImportedTag(tags, ref, { digest, mediaType: MANIFEST_TYPES.ociManifest, size: body.length }, now);
    for (const accept of CLIENT_ACCEPTS) expect(await ask(accept)).toMatchObject({ digest, cache: 'hit', body });
    expect(upstream.calls).toBe(0);
  });

  it('are served a year later with every upstream down or not knowing the tag, to any client', async () => {
    await setImportedTag(tags, ref, { digest, mediaType: MANIFEST_TYPES.ociManifest, size: body.length }, now);
    now += YEAR;
    for (const mode of ['down', 'not-found'] as const) {
      upstream.mode = mode;
      const r = await ask('application/vnd.oci.image.manifest.v1+json');
      expect(r).toMatchObject({ digest, body });
      expect(r.warning).toMatch(/^110 ocimirror "Response is Stale/);
      expect((await ask('', 'HEAD')).digest).toBe(digest);
    }
    expect(upstream.calls).toBeGreaterThan(0);
  });

  it('give way to the first answer an upstream gives', async () => {
    await setImportedTag(tags, ref, { digest, mediaType: MANIFEST_TYPES.ociManifest, size: body.length }, now);
    now += YEAR;
    upstream.mode = 'up';
    expect((await ask(CLIENT_ACCEPTS[0]!)).digest).toBe(digestOf(newer));
    const any = await tags.getAny(ref);
    expect(any).toMatchObject({ digest: digestOf(newer) });
    expect(any?.imported).toBeUndefined();
  });

  it('a mapping upstream confirmed a year ago is past staleIfError (7d) and staleIfNotFound (never): refused', async () => {
    await tags.set({ ...ref, accept: CLIENT_ACCEPTS[0]! }, { digest, mediaType: MANIFEST_TYPES.ociManifest, size: body.length, checkedAt: now });
    now += 6 * 86_400_000;
    expect(await ask(CLIENT_ACCEPTS[0]!)).toMatchObject({ digest, cache: 'stale' });
    now += YEAR;
    await expect(ask(CLIENT_ACCEPTS[0]!)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    upstream.mode = 'not-found';
    await expect(ask(CLIENT_ACCEPTS[0]!)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });
});

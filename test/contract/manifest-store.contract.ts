// The ManifestStore contract: every manifest store (filesystem now, S3 next) runs these same tests. Manifests are
// their own kind: verified on put, capped on read, stored with their media type, and never confused with blobs.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IndexedEntry } from '../../src/cache/lru-index.js';
import type { ManifestStore } from '../../src/cache/manifest-store.js';
import { MAX_MANIFEST_BYTES } from '../../src/oci/mediatypes.js';
import { digestOf, INVALID_DIGESTS } from './blob-store.contract.js';

export interface ManifestStoreUnderTest {
  store: ManifestStore;
  /** A new instance over the same storage (a restart). */
  reopen(): Promise<ManifestStore>;
  cleanup(): Promise<void>;
}

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

async function listAll(store: ManifestStore): Promise<IndexedEntry[]> {
  const all: IndexedEntry[] = [];
  for await (const e of store.list()) all.push(e);
  return all.sort((a, b) => a.id.localeCompare(b.id));
}

export function manifestStoreContract(name: string, makeStore: () => Promise<ManifestStoreUnderTest>): void {
  describe(`ManifestStore contract: ${name}`, () => {
    let sut: ManifestStoreUnderTest;
    let store: ManifestStore;
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI, layers: [], pad: randomBytes(512).toString('hex') }));
    const digest = digestOf(body);

    beforeEach(async () => {
      sut = await makeStore();
      store = sut.store;
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    it('put makes a manifest visible to head, get and list, with its media type and exact bytes', async () => {
      expect(await store.put(digest, OCI, body)).toEqual({ digest, mediaType: OCI, size: body.length });
      expect(await store.head(digest)).toEqual({ digest, mediaType: OCI, size: body.length });
      const got = await store.get(digest);
      expect(got?.mediaType).toBe(OCI);
      expect(got?.body.equals(body)).toBe(true);
      expect((await listAll(store)).map((e) => [e.kind, e.id])).toEqual([['manifest', digest]]);
    });

    it('an unknown digest is absent', async () => {
      expect(await store.head(digest)).toBeUndefined();
      expect(await store.get(digest)).toBeUndefined();
      expect(await listAll(store)).toEqual([]);
    });

    it('refuses bytes that do not match the digest, an oversized manifest and a malformed media type; nothing is stored', async () => {
      await expect(store.put(digest, OCI, Buffer.concat([body, Buffer.from(' ')]))).rejects.toThrow(/digest/);
      const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
      await expect(store.put(digestOf(big), OCI, big)).rejects.toThrow();
      for (const bad of ['', 'text', 'a/b\nc/d', 'application/json; charset=utf-8', `${'x'.repeat(200)}/${'y'.repeat(200)}`]) {
        await expect(store.put(digest, bad, body), JSON.stringify(bad)).rejects.toThrow();
      }
      expect(await listAll(store)).toEqual([]);
    });

    it('a second put of the same digest replaces the media type (the later verified answer wins)', async () => {
      await store.put(digest, OCI, body);
      await store.put(digest, INDEX, body);
      expect((await store.head(digest))?.mediaType).toBe(INDEX);
      expect((await store.get(digest))?.body.equals(body)).toBe(true);
    });

    it('delete removes it; deleting twice is fine', async () => {
      await store.put(digest, OCI, body);
      await store.delete(digest);
      await store.delete(digest);
      expect(await store.get(digest)).toBeUndefined();
      expect(await listAll(store)).toEqual([]);
    });

    it('survives a restart, and touch moves the access time forward', async () => {
      await store.put(digest, OCI, body);
      const before = (await listAll(store))[0]!.accessedAt;
      await new Promise((r) => setTimeout(r, 20));
      await store.touch(digest);
      const restarted = await sut.reopen();
      expect((await restarted.get(digest))?.body.equals(body)).toBe(true);
      expect((await listAll(restarted))[0]!.accessedAt).toBeGreaterThan(before);
    });

    it('stores a sha512 manifest and an empty JSON object', async () => {
      const d512 = digestOf(body, 'sha512');
      await store.put(d512, OCI, body);
      expect((await store.get(d512))?.body.equals(body)).toBe(true);
      const tiny = Buffer.from('{}');
      await store.put(digestOf(tiny), OCI, tiny);
      expect((await store.get(digestOf(tiny)))?.body.toString()).toBe('{}');
    });

    it('rejects invalid digests before touching storage', async () => {
      for (const bad of INVALID_DIGESTS) {
        const what = JSON.stringify(bad);
        await expect(store.head(bad), `head ${what}`).rejects.toThrow();
        await expect(store.get(bad), `get ${what}`).rejects.toThrow();
        await expect(store.put(bad, OCI, body), `put ${what}`).rejects.toThrow();
        await expect(store.delete(bad), `delete ${what}`).rejects.toThrow();
      }
    });
  });
}

// The TagStore contract: every tag store runs these same tests. Mappings are keyed by the normalised Accept set,
// the latest one is also kept under "any", delete forgets every variant, and list() finds every tag.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TagMapping, TagStore } from '../../src/cache/tag-store.js';
import { DEFAULT_MANIFEST_ACCEPT } from '../../src/oci/mediatypes.js';

export interface TagStoreUnderTest {
  store: TagStore;
  /** A new instance over the same storage (a restart, or another process). */
  reopen(): Promise<TagStore>;
  cleanup(): Promise<void>;
}

const mapping = (n: number): TagMapping => ({
  digest: `sha256:${n.toString(16).padStart(64, '0')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 100 + n, checkedAt: 1_700_000_000_000 + n,
});
const ref = { registry: '127.0.0.1:5000', repo: 'library/alpine', tag: '3.19' };
const OTHER_ACCEPT = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

export function tagStoreContract(name: string, makeStore: () => Promise<TagStoreUnderTest>): void {
  describe(`TagStore contract: ${name}`, () => {
    let sut: TagStoreUnderTest;
    let store: TagStore;
    beforeEach(async () => {
      sut = await makeStore();
      store = sut.store;
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    it('keeps a mapping per Accept set and the latest under any, also across a restart', async () => {
      await store.set({ ...ref, accept: DEFAULT_MANIFEST_ACCEPT }, mapping(1));
      await store.set({ ...ref, accept: OTHER_ACCEPT }, mapping(2));
      expect(await store.get({ ...ref, accept: DEFAULT_MANIFEST_ACCEPT })).toEqual(mapping(1));
      expect(await store.get({ ...ref, accept: OTHER_ACCEPT })).toEqual(mapping(2));
      expect(await store.getAny(ref)).toEqual(mapping(2));
      const restarted = await sut.reopen();
      expect(await restarted.get({ ...ref, accept: DEFAULT_MANIFEST_ACCEPT })).toEqual(mapping(1));
      expect(await restarted.getAny(ref)).toEqual(mapping(2));
    });

    it('unknown tags, repositories and Accept sets are absent', async () => {
      await store.set({ ...ref, accept: DEFAULT_MANIFEST_ACCEPT }, mapping(1));
      expect(await store.get({ ...ref, accept: OTHER_ACCEPT })).toBeUndefined();
      expect(await store.getAny({ ...ref, tag: 'other' })).toBeUndefined();
      expect(await store.getAny({ ...ref, repo: 'library/alpine/sub' })).toBeUndefined();
    });

    it('delete forgets every Accept variant of the tag and nothing else', async () => {
      await store.set({ ...ref, accept: DEFAULT_MANIFEST_ACCEPT }, mapping(1));
      await store.set({ ...ref, accept: OTHER_ACCEPT }, mapping(2));
      await store.set({ ...ref, tag: 'edge', accept: DEFAULT_MANIFEST_ACCEPT }, mapping(3));
      await store.delete(ref);
      expect(await store.get({ ...ref, accept: DEFAULT_MANIFEST_ACCEPT })).toBeUndefined();
      expect(await store.getAny(ref)).toBeUndefined();
      expect(await store.getAny({ ...ref, tag: 'edge' })).toEqual(mapping(3));
      expect(await (await sut.reopen()).getAny(ref)).toBeUndefined();
    });

    it('list finds every tag with its latest mapping and an index entry', async () => {
      await store.set({ ...ref, accept: DEFAULT_MANIFEST_ACCEPT }, mapping(1));
      await store.set({ registry: 'docker.io', repo: 'a/b/c', tag: 'v1.0.0', accept: DEFAULT_MANIFEST_ACCEPT }, mapping(2));
      const all = [];
      for await (const t of (await sut.reopen()).list()) all.push(t);
      all.sort((a, b) => a.entry.id.localeCompare(b.entry.id));
      expect(all.map((t) => [t.ref, t.mapping, t.entry.kind, t.entry.id])).toEqual([
        [ref, mapping(1), 'tag', '127.0.0.1:5000/library/alpine:3.19'],
        [{ registry: 'docker.io', repo: 'a/b/c', tag: 'v1.0.0' }, mapping(2), 'tag', 'docker.io/a/b/c:v1.0.0'],
      ]);
      expect(all.every((t) => t.entry.size > 0)).toBe(true);
    });

    it('refuses names and tags outside the grammar before touching storage', async () => {
      const bad = [
        { ...ref, repo: '../../etc' }, { ...ref, repo: 'Library/x' }, { ...ref, tag: '../x' }, { ...ref, tag: '.hidden' },
        { ...ref, registry: 'a/b' }, { ...ref, registry: 'x y' }, { ...ref, registry: '..' }, { ...ref, registry: '*' },
      ];
      for (const r of bad) {
        await expect(store.set({ ...r, accept: '' }, mapping(1)), JSON.stringify(r)).rejects.toThrow();
        await expect(store.getAny(r), JSON.stringify(r)).rejects.toThrow();
      }
    });
  });
}

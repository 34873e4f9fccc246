// The BlobStore contract (after Distribution's storage/driver/testsuites): every store — the filesystem one now,
// S3 later — runs these same tests. A store under test is made fresh per test; `reopen()` gives a second instance
// over the same storage, as a restarted process would see it.
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DigestMismatchError, type BlobStore, type StoredBlob } from '../../src/cache/blob-store.js';

export interface StoreUnderTest {
  store: BlobStore;
  /** A new instance over the same storage (a restart). */
  reopen(): Promise<BlobStore>;
  cleanup(): Promise<void>;
}

export const digestOf = (data: Buffer, alg: 'sha256' | 'sha512' = 'sha256'): string => `${alg}:${createHash(alg).update(data).digest('hex')}`;

async function readStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function listAll(store: BlobStore): Promise<StoredBlob[]> {
  const all: StoredBlob[] = [];
  for await (const b of store.list()) all.push(b);
  return all.sort((a, b) => a.digest.localeCompare(b.digest));
}

/** Digests that must never reach storage: traversal, wrong algorithm, wrong length or case, separators. */
export const INVALID_DIGESTS = [
  'sha256:../../etc', 'sha256:../../../../tmp/x', `sha256:${'a'.repeat(62)}/..`, `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`,
  `md5:${'a'.repeat(32)}`, `sha256/${'a'.repeat(64)}`, `sha256:${'a'.repeat(64)}\0`, '', 'sha256:', `../sha256:${'a'.repeat(64)}`,
];

export function blobStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: BlobStore;
    const data = randomBytes(300_000);
    const digest = digestOf(data);

    beforeEach(async () => {
      sut = await makeStore();
      store = sut.store;
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    it('put makes a blob visible to stat, readAll, open and list', async () => {
      const stored = await store.put(digest, data);
      expect(stored).toMatchObject({ digest, size: data.length });
      expect(await store.stat(digest)).toMatchObject({ digest, size: data.length });
      expect((await store.readAll(digest))?.equals(data)).toBe(true);
      expect((await readStream(await store.open(digest))).equals(data)).toBe(true);
      expect((await listAll(store)).map((b) => [b.digest, b.size])).toEqual([[digest, data.length]]);
    });

    it('an unknown digest is absent: stat and readAll give undefined, open rejects', async () => {
      const other = digestOf(Buffer.from('never stored'));
      expect(await store.stat(other)).toBeUndefined();
      expect(await store.readAll(other)).toBeUndefined();
      await expect(store.open(other)).rejects.toThrow();
      expect(await listAll(store)).toEqual([]);
    });

    it('open streams an inclusive byte range', async () => {
      await store.put(digest, data);
      const cases: [number, number][] = [[0, 0], [0, 99], [1000, 1999], [data.length - 1, data.length - 1], [12_345, data.length - 1]];
      for (const [start, end] of cases) {
        const got = await readStream(await store.open(digest, { start, end }));
        expect(got.equals(data.subarray(start, end + 1)), `range ${start}-${end}`).toBe(true);
      }
    });

    it('stores an empty blob and a sha512 blob', async () => {
      const empty = Buffer.alloc(0);
      await store.put(digestOf(empty), empty);
      expect(await store.stat(digestOf(empty))).toMatchObject({ size: 0 });
      expect((await store.readAll(digestOf(empty)))?.length).toBe(0);
      const d512 = digestOf(data, 'sha512');
      await store.put(d512, data);
      expect((await store.readAll(d512))?.equals(data)).toBe(true);
    });

    it("a writer's bytes are invisible until commit, readable through the writer meanwhile", async () => {
      const w = await store.createWriter(digest);
      await w.write(data.subarray(0, 100_000));
      await w.write(data.subarray(100_000));
      expect(w.written).toBe(data.length);
      expect((await w.read(0, 10)).equals(data.subarray(0, 10))).toBe(true);
      expect((await w.read(150_000, 50_000)).equals(data.subarray(150_000, 200_000))).toBe(true);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.readAll(digest)).toBeUndefined();
      await expect(store.open(digest)).rejects.toThrow();
      expect(await listAll(store)).toEqual([]);
      const stored = await w.commit(data.length);
      expect(stored).toMatchObject({ digest, size: data.length });
      // Readers following a fill keep reading through the writer after commit, until close().
      expect((await w.read(data.length - 5, 5)).equals(data.subarray(-5))).toBe(true);
      await w.close();
      expect((await store.readAll(digest))?.equals(data)).toBe(true);
      expect(await store.recover()).toBe(0);
    });

    it('commit with the wrong digest throws DigestMismatchError and leaves nothing', async () => {
      const w = await store.createWriter(digest);
      const corrupt = Buffer.from(data);
      corrupt[1234] = corrupt[1234]! ^ 0xff;
      await w.write(corrupt);
      const err = await w.commit(data.length).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as DigestMismatchError).actual).toBe(digestOf(corrupt));
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.readAll(digest)).toBeUndefined();
      expect(await listAll(store)).toEqual([]);
      expect(await store.recover()).toBe(0);
    });

    it('commit with the wrong size throws and leaves nothing, even when the bytes hash right', async () => {
      const short = await store.createWriter(digest);
      await short.write(data.subarray(0, 1000));
      await expect(short.commit(data.length)).rejects.toThrow(DigestMismatchError);
      const exact = await store.createWriter(digest);
      await exact.write(data);
      await expect(exact.commit(data.length + 1)).rejects.toThrow(/size mismatch/);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await listAll(store)).toEqual([]);
      expect(await store.recover()).toBe(0);
    });

    it('abort discards a writer', async () => {
      const w = await store.createWriter(digest);
      await w.write(data);
      await w.abort();
      expect(await store.stat(digest)).toBeUndefined();
      expect(await listAll(store)).toEqual([]);
      expect(await store.recover()).toBe(0);
    });

    it('two writers of the same digest both commit; the blob is whole', async () => {
      const [a, b] = await Promise.all([store.createWriter(digest), store.createWriter(digest)]);
      await Promise.all([a.write(data), b.write(data)]);
      await Promise.all([a.commit(data.length), b.commit(data.length)]);
      await Promise.all([a.close(), b.close()]);
      expect((await store.readAll(digest))?.equals(data)).toBe(true);
      expect(await listAll(store)).toHaveLength(1);
    });

    it('recover() removes what interrupted writers left behind; committed blobs stay', async () => {
      await store.put(digest, data);
      const other = randomBytes(1000);
      const abandoned = await store.createWriter(digestOf(other));
      await abandoned.write(other.subarray(0, 500));
      // A crash: the writer is neither committed nor aborted, and a new process opens the store.
      const restarted = await sut.reopen();
      expect(await restarted.recover()).toBeGreaterThanOrEqual(1);
      expect(await restarted.recover()).toBe(0);
      expect(await restarted.stat(digestOf(other))).toBeUndefined();
      expect((await restarted.readAll(digest))?.equals(data)).toBe(true);
      expect((await listAll(restarted)).map((b) => b.digest)).toEqual([digest]);
    });

    it('delete removes a blob; deleting an absent blob is not an error', async () => {
      await store.put(digest, data);
      await store.delete(digest);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await listAll(store)).toEqual([]);
      await store.delete(digest);
    });

    it('list() reports every committed blob with its size, also after a restart', async () => {
      const blobs = [randomBytes(10), randomBytes(2000), randomBytes(70_000)];
      for (const b of blobs) await store.put(digestOf(b), b);
      const expected = blobs.map((b) => [digestOf(b), b.length]).sort((x, y) => String(x[0]).localeCompare(String(y[0])));
      expect((await listAll(store)).map((b) => [b.digest, b.size])).toEqual(expected);
      const restarted = await sut.reopen();
      const listed = await listAll(restarted);
      expect(listed.map((b) => [b.digest, b.size])).toEqual(expected);
      for (const b of listed) expect(b.accessedAt).toBeGreaterThan(0);
    });

    it('touch() never moves the access time backwards and ignores an absent blob', async () => {
      await store.put(digest, data);
      const before = (await store.stat(digest))!.accessedAt;
      await store.touch(digest);
      expect((await store.stat(digest))!.accessedAt).toBeGreaterThanOrEqual(before);
      await store.touch(digestOf(Buffer.from('absent')));
    });

    it('refuses invalid digests in every method: they never become paths', async () => {
      for (const bad of INVALID_DIGESTS) {
        const what = JSON.stringify(bad);
        await expect(store.stat(bad), `stat ${what}`).rejects.toThrow();
        await expect(store.readAll(bad), `readAll ${what}`).rejects.toThrow();
        await expect(store.open(bad), `open ${what}`).rejects.toThrow();
        await expect(store.put(bad, Buffer.from('x')), `put ${what}`).rejects.toThrow();
        await expect(store.createWriter(bad), `createWriter ${what}`).rejects.toThrow();
        await expect(store.delete(bad), `delete ${what}`).rejects.toThrow();
        await expect(store.touch(bad), `touch ${what}`).rejects.toThrow();
      }
      expect(await listAll(store)).toEqual([]);
      expect(await store.recover()).toBe(0);
    });
  });
}

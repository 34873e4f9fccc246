// The filesystem store runs the BlobStore contract, plus what only a filesystem can show: the on-disk layout,
// where unfinished writes live, that nothing escapes cache.dir, and the persisted access time behind LRU-across-restarts.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/cache/fs-store.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';
import { blobStoreContract, digestOf, INVALID_DIGESTS } from './blob-store.contract.js';

blobStoreContract('FsBlobStore', async () => {
  const dir = makeTmpDir('ocimirror-fs-store-');
  const open = async () => {
    const s = new FsBlobStore(join(dir, 'cache'));
    await s.init();
    return s;
  };
  return { store: await open(), reopen: open, cleanup: () => removeTmpDir(dir) };
});

/** Every file under dir, relative. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('FsBlobStore on disk', () => {
  let root: string;
  let cacheDir: string;
  let store: FsBlobStore;
  const data = randomBytes(50_000);
  const digest = digestOf(data);
  const hex = digest.slice('sha256:'.length);

  beforeEach(async () => {
    root = makeTmpDir('ocimirror-fs-store-');
    cacheDir = join(root, 'a', 'b', 'cache');
    store = new FsBlobStore(cacheDir);
    await store.init();
  });
  afterEach(async () => {
    await removeTmpDir(root);
  });

  it('is content-addressed as blobs/sha256/<first two hex>/<hex>', async () => {
    await store.put(digest, data);
    expect(store.path(digest)).toBe(join(cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex));
    expect(filesUnder(cacheDir)).toEqual([join('blobs', 'sha256', hex.slice(0, 2), hex)]);
  });

  it('keeps an unfinished write under tmp/ and nowhere else', async () => {
    const w = await store.createWriter(digest);
    await w.write(data.subarray(0, 1000));
    const files = filesUnder(cacheDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^tmp\//);
    await w.write(data.subarray(1000));
    await w.commit(data.length);
    await w.close();
    expect(filesUnder(cacheDir)).toEqual([join('blobs', 'sha256', hex.slice(0, 2), hex)]);
  });

  it('recover() empties tmp/ after a crash left partial files (even several)', async () => {
    for (let i = 0; i < 3; i++) {
      const w = await store.createWriter(digest);
      await w.write(data.subarray(0, 10_000 * (i + 1)));
    }
    expect(readdirSync(join(cacheDir, 'tmp'))).toHaveLength(3);
    const restarted = new FsBlobStore(cacheDir);
    await restarted.init();
    expect(await restarted.recover()).toBe(3);
    expect(readdirSync(join(cacheDir, 'tmp'))).toEqual([]);
    expect(await restarted.stat(digest)).toBeUndefined();
  });

  it('never creates or removes anything outside cache.dir for invalid digests', async () => {
    const before = filesUnder(root);
    for (const bad of INVALID_DIGESTS) {
      expect(() => store.path(bad), JSON.stringify(bad)).toThrow(/invalid digest/);
      await store.put(bad, Buffer.from('escape')).catch(() => undefined);
      await store.delete(bad).catch(() => undefined);
    }
    expect(filesUnder(root)).toEqual(before);
  });

  it('list() ignores files that are not blobs named by their digest', async () => {
    await store.put(digest, data);
    const { writeFileSync, mkdirSync } = await import('node:fs');
    mkdirSync(join(cacheDir, 'blobs', 'sha256', 'zz'), { recursive: true });
    writeFileSync(join(cacheDir, 'blobs', 'sha256', 'zz', 'not-a-digest'), 'x');
    mkdirSync(join(cacheDir, 'blobs', 'md5', 'ab'), { recursive: true });
    writeFileSync(join(cacheDir, 'blobs', 'md5', 'ab', 'ab'.repeat(16)), 'x');
    const listed = [];
    for await (const b of store.list()) listed.push(b.digest);
    expect(listed).toEqual([digest]);
  });

  it('a stream from open() leaves no FileHandle behind for the garbage collector to close again', async () => {
    await store.put(digest, data);
    // In a child process: a FileHandle whose fd the stream already closed makes Node close that fd number again on
    // GC — EBADF as an uncaught exception (a crashed proxy), or, if the number was reused, someone else's file.
    const script = `
      import { FsBlobStore } from ${JSON.stringify(join(process.cwd(), 'src/cache/fs-store.ts'))};
      const store = new FsBlobStore(${JSON.stringify(cacheDir)});
      for (let i = 0; i < 20; i++) for await (const _ of await store.open(${JSON.stringify(digest)})) {}
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 300));
      console.log('alive');`;
    const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: child.status, stdout: child.stdout.trim(), stderr: child.stderr.split('\n').filter((l) => /Error|EBADF/.test(l)) })
      .toEqual({ status: 0, stdout: 'alive', stderr: [] });
  });

  it('touch() persists every access as mtime, so LRU order survives a restart', async () => {
    await store.put(digest, data);
    const old = new Date('2020-01-01T00:00:00Z');
    utimesSync(store.path(digest), old, old);
    expect((await store.stat(digest))!.accessedAt).toBe(old.getTime());
    await store.touch(digest);
    const touched = statSync(store.path(digest)).mtimeMs;
    expect(touched).toBeGreaterThan(Date.now() - 10_000);
    // A second access right after the first is written down too (A, B, A must leave A newest on disk).
    utimesSync(store.path(digest), old, old);
    await store.touch(digest);
    expect(statSync(store.path(digest)).mtimeMs).toBeGreaterThan(Date.now() - 10_000);
  });
});

// The filesystem manifest and tag stores run their contracts, plus what only a filesystem can show: temp files
// live under <cache.dir>/tmp, a damaged manifest file is removed instead of served, and 0.1's metadata goes.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FsManifestStore } from '../../src/cache/fs-manifest-store.js';
import { FsTagStore } from '../../src/cache/fs-tag-store.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';
import { digestOf } from './blob-store.contract.js';
import { manifestStoreContract } from './manifest-store.contract.js';
import { tagStoreContract } from './tag-store.contract.js';

const log = pino({ level: 'silent' });

manifestStoreContract('FsManifestStore', async () => {
  const dir = makeTmpDir('ocimirror-fs-manifests-');
  const open = async () => { const s = new FsManifestStore(join(dir, 'cache'), log); await s.init(); return s; };
  return { store: await open(), reopen: open, cleanup: () => removeTmpDir(dir) };
});

tagStoreContract('FsTagStore', async () => {
  const dir = makeTmpDir('ocimirror-fs-tags-');
  const open = async () => { const s = new FsTagStore(join(dir, 'cache'), log); await s.init(); return s; };
  return { store: await open(), reopen: open, cleanup: () => removeTmpDir(dir) };
});

describe('FsManifestStore on disk', () => {
  it('writes through <dir>/tmp and leaves nothing there; a damaged file is removed, not served', async () => {
    const dir = makeTmpDir('ocimirror-fs-manifests-');
    try {
      const store = new FsManifestStore(dir, log);
      await store.init();
      const body = Buffer.from('{"schemaVersion":2}');
      const digest = digestOf(body);
      await store.put(digest, 'application/vnd.oci.image.manifest.v1+json', body);
      expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
      writeFileSync(store.path(digest), body); // no media type line: not something ocimirror wrote
      expect(await store.get(digest)).toBeUndefined();
      expect(existsSync(store.path(digest))).toBe(false);
    } finally {
      await removeTmpDir(dir);
    }
  });

  it("list() drops ocimirror 0.1's <hex>.json media type files", async () => {
    const dir = makeTmpDir('ocimirror-fs-manifests-');
    try {
      const store = new FsManifestStore(dir, log);
      await store.init();
      const hex = 'ab'.repeat(32);
      mkdirSync(join(dir, 'manifests', 'sha256', 'ab'), { recursive: true });
      writeFileSync(join(dir, 'manifests', 'sha256', 'ab', `${hex}.json`), '{"mediaType":"x/y"}');
      const listed = [];
      for await (const e of store.list()) listed.push(e);
      expect(listed).toEqual([]);
      expect(existsSync(join(dir, 'manifests', 'sha256', 'ab', `${hex}.json`))).toBe(false);
    } finally {
      await removeTmpDir(dir);
    }
  });
});

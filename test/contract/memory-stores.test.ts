// The memory tier (cache.memorySize) in front of the filesystem stores runs the same contracts, plus what only it
// can show: a small entry, once read or stored, is served without the store; a delete through it drops the copy;
// large entries are never held; the byte budget holds.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/cache/fs-store.js';
import { FsManifestStore } from '../../src/cache/fs-manifest-store.js';
import { MEMORY_ENTRY_MAX, MemoryBlobStore, MemoryManifestStore, MemoryTier } from '../../src/cache/memory-store.js';
import type { BlobSender } from '../../src/oci/service.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';
import { blobStoreContract, digestOf } from './blob-store.contract.js';
import { manifestStoreContract } from './manifest-store.contract.js';

const log = pino({ level: 'silent' });

blobStoreContract('MemoryBlobStore over FsBlobStore', async () => {
  const dir = makeTmpDir('ocimirror-memory-blobs-');
  const open = async () => { const s = new FsBlobStore(join(dir, 'cache')); await s.init(); return new MemoryBlobStore(s, new MemoryTier(32 << 20)); };
  return { store: await open(), reopen: open, cleanup: () => removeTmpDir(dir) };
});

manifestStoreContract('MemoryManifestStore over FsManifestStore', async () => {
  const dir = makeTmpDir('ocimirror-memory-manifests-');
  const open = async () => { const s = new FsManifestStore(join(dir, 'cache'), log); await s.init(); return new MemoryManifestStore(s, new MemoryTier(32 << 20)); };
  return { store: await open(), reopen: open, cleanup: () => removeTmpDir(dir) };
});

/** What a sender writes, and the byte count its onClose reported. */
async function sendAll(make: (onClose: (sent: number) => void) => Promise<BlobSender>): Promise<{ body: Buffer; sent: number }> {
  let sent = -1;
  const sender = await make((n) => { sent = n; });
  const chunks: Buffer[] = [];
  // A copy: a file sender reads into the same pooled buffers again once a write has called back.
  const out = new Writable({ write(chunk: Buffer, _enc, cb) { chunks.push(Buffer.from(chunk)); cb(); } });
  await sender.sendTo(out);
  return { body: Buffer.concat(chunks), sent };
}

describe('the memory tier', () => {
  let dir: string;
  let fs: FsBlobStore;
  let memory: MemoryTier;
  let blobs: MemoryBlobStore;
  beforeEach(async () => {
    dir = makeTmpDir('ocimirror-memory-');
    fs = new FsBlobStore(join(dir, 'cache'));
    await fs.init();
    memory = new MemoryTier(4 << 20);
    blobs = new MemoryBlobStore(fs, memory);
  });
  afterEach(() => removeTmpDir(dir));

  it('serves a small blob from memory once it has been read, and ranges of it', async () => {
    const data = randomBytes(20_000);
    const digest = digestOf(data);
    await blobs.put(digest, data);
    const whole = { start: 0, end: data.length - 1 };
    expect(await sendAll((c) => blobs.sender(digest, whole, c, data.length))).toEqual({ body: data, sent: data.length });
    rmSync(fs.path(digest));
    expect(await sendAll((c) => blobs.sender(digest, whole, c, data.length))).toEqual({ body: data, sent: data.length });
    expect((await sendAll((c) => blobs.sender(digest, { start: 100, end: 199 }, c, data.length))).body).toEqual(data.subarray(100, 200));
  });

  it('forgets a blob deleted through it (eviction, cache rm)', async () => {
    const data = randomBytes(1000);
    const digest = digestOf(data);
    await blobs.put(digest, data);
    await sendAll((c) => blobs.sender(digest, { start: 0, end: 999 }, c, 1000));
    expect(memory.blob(digest)).toBeDefined();
    await blobs.delete(digest);
    expect(memory.blob(digest)).toBeUndefined();
    await expect(blobs.sender(digest, { start: 0, end: 999 }, () => undefined, 1000)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('never holds a blob larger than an entry may be, or one whose size it was not told', async () => {
    const big = randomBytes(MEMORY_ENTRY_MAX + 1);
    const small = randomBytes(100);
    await blobs.put(digestOf(big), big);
    await blobs.put(digestOf(small), small);
    const sent = await sendAll((c) => blobs.sender(digestOf(big), { start: 0, end: big.length - 1 }, c, big.length));
    expect(sent.sent).toBe(big.length);
    expect(sent.body.equals(big)).toBe(true);
    expect((await sendAll((c) => blobs.sender(digestOf(small), { start: 0, end: 99 }, c))).body).toEqual(small);
    expect(memory.bytes).toBe(0);
  });

  it('reads only the bytes the index knows of: a file grown behind its back is not read whole', async () => {
    const data = randomBytes(5000);
    const digest = digestOf(data);
    await blobs.put(digest, data);
    const told = 4000;
    expect((await sendAll((c) => blobs.sender(digest, { start: 0, end: told - 1 }, c, told))).body).toEqual(data.subarray(0, told));
    expect(memory.bytes).toBe(told);
  });

  it('keeps within its byte budget, least recently used out first', async () => {
    const entry = memory.maxBytes / 16;
    const digests: string[] = [];
    for (let i = 0; i < 40; i++) {
      const data = randomBytes(entry);
      const digest = digestOf(data);
      digests.push(digest);
      await blobs.put(digest, data);
      await sendAll((c) => blobs.sender(digest, { start: 0, end: entry - 1 }, c, entry));
      expect(memory.bytes).toBeLessThanOrEqual(memory.maxBytes);
    }
    expect(memory.blob(digests[0]!)).toBeUndefined();
    expect(memory.blob(digests[39]!)).toBeDefined();
  });

  it('keeps a manifest it stored or read; a delete through it drops the copy', async () => {
    const store = new FsManifestStore(join(dir, 'cache'), log);
    await store.init();
    const manifests = new MemoryManifestStore(store, memory);
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] }));
    const digest = digestOf(body);
    await manifests.put(digest, 'application/vnd.oci.image.manifest.v1+json', body);
    rmSync(store.path(digest));
    expect(await manifests.get(digest)).toMatchObject({ digest, size: body.length, body });
    expect(await manifests.head(digest)).toEqual({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: body.length });
    await manifests.delete(digest);
    expect(await manifests.get(digest)).toBeUndefined();
  });
});

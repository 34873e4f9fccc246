// The S3 stores run the BlobStore, ManifestStore and TagStore contracts against real Ceph RGW (one RGW for the
// file), plus what only S3 can show of the blob store: the key layout,
// multipart uploads that stay invisible until the digest matched, and recover() aborting uploads left behind by
// this process (at once) and by other replicas (once stale), never touching anything outside the prefix.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand, CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client,
} from '@aws-sdk/client-s3';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DigestMismatchError, type BlobWriter } from '../../src/cache/blob-store.js';
import { S3ManifestStore } from '../../src/cache/s3-manifest-store.js';
import { S3BlobStore, type S3StoreOptions } from '../../src/cache/s3-store.js';
import { S3TagStore } from '../../src/cache/s3-tag-store.js';
import type { S3BlobWriter } from '../../src/cache/s3-writer.js';
import { startCephRgw, type CephRgw } from '../helpers/ceph-rgw.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';
import { blobStoreContract, digestOf } from './blob-store.contract.js';
import { manifestStoreContract } from './manifest-store.contract.js';
import { tagStoreContract } from './tag-store.contract.js';

let rgw: CephRgw;
let client: S3Client;
let bucket: string;

beforeAll(async () => {
  rgw = await startCephRgw();
  client = rgw.client();
  bucket = await rgw.createBucket();
});
afterAll(async () => {
  await rgw?.stop();
});

const HOUR = 3_600_000;

/** A store on a fresh prefix of the shared bucket, with its own spill dir. */
function makeStore(overrides: Partial<S3StoreOptions> = {}): { open: () => Promise<S3BlobStore>; prefix: string; spillDir: string; cleanup: () => Promise<void> } {
  const tmp = makeTmpDir('ocimirror-s3-store-');
  const prefix = freshPrefix();
  const spillDir = join(tmp, 'tmp');
  const open = async () => {
    const s = new S3BlobStore({ client, bucket, prefix, spillDir, staleUploadMs: HOUR, ...overrides });
    await s.init();
    return s;
  };
  return { open, prefix, spillDir, cleanup: () => removeTmpDir(tmp) };
}

blobStoreContract('S3BlobStore (Ceph RGW)', async () => {
  const { open, cleanup } = makeStore();
  return { store: await open(), reopen: open, cleanup };
});

const log = pino({ level: 'silent' });
const freshPrefix = () => `t-${randomBytes(5).toString('hex')}/`;

manifestStoreContract('S3ManifestStore (Ceph RGW)', async () => {
  const prefix = freshPrefix();
  const open = async () => new S3ManifestStore({ client, bucket, prefix, log });
  return { store: await open(), reopen: open, cleanup: async () => undefined };
});

tagStoreContract('S3TagStore (Ceph RGW)', async () => {
  const prefix = freshPrefix();
  const open = async () => new S3TagStore({ client, bucket, prefix, log });
  return { store: await open(), reopen: open, cleanup: async () => undefined };
});

async function uploadsUnder(prefix: string): Promise<{ key: string; uploadId: string }[]> {
  const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}

async function keysUnder(prefix: string): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

const MiB = 1024 * 1024;
const PART = 5 * MiB; // S3's (and RGW's) smallest part

describe('S3BlobStore on Ceph RGW', () => {
  let sut: ReturnType<typeof makeStore>;
  let store: S3BlobStore;
  const big = randomBytes(12 * MiB + 12_345);
  const bigDigest = digestOf(big);

  beforeEach(async () => {
    sut = makeStore({ partSize: PART, partConcurrency: 2 });
    store = await sut.open();
  });
  afterEach(async () => {
    await sut.cleanup();
  });

  /** Writes `data` (or its first upTo bytes) in uneven chunks, as an upstream delivers them; waits for the parts. */
  async function writeAll(w: BlobWriter, data: Buffer, upTo = data.length): Promise<void> {
    for (let at = w.written; at < upTo;) {
      const n = Math.min(upTo - at, 700_001);
      await w.write(data.subarray(at, at + n));
      at += n;
    }
    await (w as S3BlobWriter).partsUploaded();
  }

  it('stores blobs as <prefix>blobs/<alg>/<hex>; a prefix without a slash gets one', async () => {
    const small = randomBytes(1000);
    await store.put(digestOf(small), small);
    expect(await keysUnder(sut.prefix)).toEqual([`${sut.prefix}blobs/sha256/${digestOf(small).slice(7)}`]);
    const bare = new S3BlobStore({ client, bucket, prefix: sut.prefix.replace(/\/$/, ''), spillDir: sut.spillDir, staleUploadMs: HOUR });
    expect(bare.key(digestOf(small))).toBe(`${sut.prefix}blobs/sha256/${digestOf(small).slice(7)}`);
    expect((await bare.readAll(digestOf(small)))?.equals(small)).toBe(true);
  });

  it('a blob larger than a part streams into a multipart upload that is invisible until commit', async () => {
    const w = await store.createWriter(bigDigest);
    await writeAll(w, big, 11 * MiB);
    // Two parts are full, so the upload exists; the object does not.
    expect(await uploadsUnder(sut.prefix)).toEqual([{ key: store.key(bigDigest), uploadId: expect.any(String) }]);
    await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: store.key(bigDigest) }))).rejects.toThrow();
    expect(await store.stat(bigDigest)).toBeUndefined();
    // Readers following the fill read back across part boundaries, from bytes already sent and not yet sent.
    expect((await w.read(PART - 10, 20)).equals(big.subarray(PART - 10, PART + 10))).toBe(true);
    expect((await w.read(11 * MiB - 5, 5)).equals(big.subarray(11 * MiB - 5, 11 * MiB))).toBe(true);
    await writeAll(w, big);
    await w.commit(big.length);
    expect(await uploadsUnder(sut.prefix)).toEqual([]);
    expect(await store.stat(bigDigest)).toMatchObject({ size: big.length });
    const chunks: Buffer[] = [];
    for await (const c of await store.open(bigDigest, { start: PART - 3, end: 2 * PART + 2 })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(big.subarray(PART - 3, 2 * PART + 3))).toBe(true);
    expect((await store.readAll(bigDigest))?.equals(big)).toBe(true);
    await w.close();
    expect(readdirSync(sut.spillDir)).toEqual([]);
  });

  it('a multipart writer with the wrong digest aborts its upload: no object, no upload, no spill file', async () => {
    const corrupt = Buffer.from(big);
    corrupt[PART + 1] = corrupt[PART + 1]! ^ 0xff;
    const w = await store.createWriter(bigDigest);
    await writeAll(w, corrupt);
    expect(await uploadsUnder(sut.prefix)).toHaveLength(1);
    await expect(w.commit(big.length)).rejects.toThrow(DigestMismatchError);
    expect(await uploadsUnder(sut.prefix)).toEqual([]);
    expect(await keysUnder(sut.prefix)).toEqual([]);
    expect(readdirSync(sut.spillDir)).toEqual([]);
  });

  it('a part S3 refuses fails the writer: commit rejects and nothing becomes visible', async () => {
    const w = await store.createWriter(bigDigest);
    await writeAll(w, big, 6 * MiB);
    const [upload] = await uploadsUnder(sut.prefix);
    // The upload vanishes behind the writer's back (another process, a lifecycle rule): later parts cannot land.
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload!.key, UploadId: upload!.uploadId }));
    const err = await writeAll(w, big).then(() => w.commit(big.length)).then(() => 'committed', (e: unknown) => e);
    // RGW answers NoSuchUpload, sometimes before it has read the part, so the client may see the reset instead.
    expect(err).toBeInstanceOf(Error);
    expect(`${(err as Error).name}: ${(err as Error).message}`).toMatch(/^NoSuchUpload|EPIPE|ECONNRESET/);
    expect(await store.stat(bigDigest)).toBeUndefined();
    expect(await uploadsUnder(sut.prefix)).toEqual([]);
    // The fill aborts a writer that failed; that removes the spill file and the record of the upload.
    await w.abort();
    expect(readdirSync(sut.spillDir)).toEqual([]);
  });

  it('recover() after a crash aborts the upload this process left, at once', async () => {
    const w = await store.createWriter(bigDigest);
    await writeAll(w, big, 6 * MiB);
    expect(await uploadsUnder(sut.prefix)).toHaveLength(1);
    expect(readdirSync(sut.spillDir).sort()).toEqual([expect.stringMatching(/^sha256-[0-9a-f]{64}\.[0-9a-f]+$/), expect.stringMatching(/\.upload$/)]);
    const restarted = await sut.open();
    expect(await restarted.recover()).toBe(1);
    expect(await uploadsUnder(sut.prefix)).toEqual([]);
    expect(readdirSync(sut.spillDir)).toEqual([]);
    expect(await restarted.recover()).toBe(0);
  });

  it("recover() aborts other replicas' uploads only once stale, and never outside its prefix", async () => {
    const key = store.key(bigDigest);
    const outside = `other-${randomBytes(4).toString('hex')}/blobs/sha256/${bigDigest.slice(7)}`;
    await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const foreign = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: outside }));
    // A replica's live fill: younger than staleUploadMs, so it stays.
    expect(await store.recover()).toBe(0);
    expect(await uploadsUnder(sut.prefix)).toHaveLength(1);
    // Two hours on, the same upload can only belong to a replica that died.
    const later = new S3BlobStore({ client, bucket, prefix: sut.prefix, spillDir: sut.spillDir, staleUploadMs: HOUR, now: () => Date.now() + 2 * HOUR });
    expect(await later.recover()).toBe(1);
    expect(await uploadsUnder(sut.prefix)).toEqual([]);
    expect(await uploadsUnder(outside)).toEqual([{ key: outside, uploadId: foreign.UploadId }]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: outside, UploadId: foreign.UploadId }));
  });

  it('part buffers are bounded across all writers (maxPartsInFlight), and concurrent writers still finish', async () => {
    let inFlight = 0;
    let most = 0;
    // The store's own client, with a count of the part buffers being sent at any moment.
    const counting = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop !== 'send') return Reflect.get(target, prop, receiver);
        return async (command: { constructor: { name: string } }) => {
          const holdsBuffer = ['UploadPartCommand', 'PutObjectCommand'].includes(command.constructor.name);
          if (holdsBuffer) most = Math.max(most, ++inFlight);
          try { return await target.send(command as never); } finally { if (holdsBuffer) inFlight--; }
        };
      },
    });
    const bounded = new S3BlobStore({ client: counting, bucket, prefix: sut.prefix, spillDir: sut.spillDir, staleUploadMs: HOUR, partSize: PART, partConcurrency: 4, maxPartsInFlight: 1 });
    const blobs = [randomBytes(12 * MiB), randomBytes(11 * MiB), randomBytes(3 * MiB)];
    await Promise.all(blobs.map(async (b) => {
      const w = await bounded.createWriter(digestOf(b));
      await writeAll(w, b);
      await w.commit(b.length);
      await w.close();
    }));
    for (const b of blobs) expect((await bounded.readAll(digestOf(b)))?.equals(b)).toBe(true);
    expect(most).toBe(1);
  });

  it('open() of an absent blob fails with ENOENT, as the filesystem store does', async () => {
    await expect(store.open(bigDigest)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('init() names a missing bucket', async () => {
    const s = new S3BlobStore({ client, bucket: `absent-${randomBytes(4).toString('hex')}`, prefix: '', spillDir: sut.spillDir, staleUploadMs: HOUR });
    await expect(s.init()).rejects.toThrow(/bucket "absent-[0-9a-f]+" is not usable: it does not exist/);
  });
});

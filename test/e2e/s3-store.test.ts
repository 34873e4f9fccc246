// ocimirror with cache.store type s3 on real Ceph RGW, pulling from a real Distribution: a cold pull lands every
// blob in the bucket (a layer bigger than one part through a multipart upload), a warm pull asks upstream for no
// blob, and a second ocimirror with an empty cache.dir on the same bucket serves the whole image (tag mapping,
// manifest, blobs) with the upstream down.
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCephRgw, type CephRgw } from '../helpers/ceph-rgw.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { waitFor } from '../helpers/eventually.js';
import { blobBytes, buildLargeLayerImage, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let rgw: CephRgw;
let s3: S3Client;
let bucket: string;
let dist: Distribution;
let image: BuiltImage;
let work: string;
const proxies: TestProxy[] = [];

beforeAll(async () => {
  work = makeTmpDir('ocimirror-s3-e2e-');
  [rgw, dist] = await Promise.all([startCephRgw(), startDistribution()]);
  s3 = rgw.client();
  bucket = await rgw.createBucket();
  // 20 MiB: three parts of 8 MiB, so the layer goes through a multipart upload.
  image = await buildLargeLayerImage({ format: 'oci', sizeBytes: 20 * MiB, seed: 1010, compression: 'none', dir: work });
  await pushImage(dist.url, 'library/big', '1.0', image);
}, 120_000);
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.close()));
  await Promise.allSettled([rgw?.stop(), dist?.close()]);
  if (work) await removeTmpDir(work);
});

async function proxyOnBucket(): Promise<TestProxy> {
  const p = await startTestProxy({
    mirrors: { 'docker.io': { endpoint: [dist.url] } },
    cache: { store: { type: 's3', endpoint: rgw.endpoint, bucket, prefix: 'e2e/', accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } },
  });
  proxies.push(p);
  return p;
}

async function bucketKeys(folder = 'blobs/'): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `e2e/${folder}` }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

describe('cache.store type s3', () => {
  it('a cold pull stores every blob in the bucket; a warm pull fetches no blob upstream', async () => {
    const a = await proxyOnBucket();
    expect(a.logs().find((l) => l.msg === 'cache ready')).toMatchObject({ store: { type: 's3', endpoint: rgw.endpoint, bucket, prefix: 'e2e/' } });
    expect(a.logText()).not.toContain(rgw.secretAccessKey);
    const cold = await pullThrough(a.url, 'library/big', '1.0');
    expect(cold.blobs.sort()).toEqual(image.blobs.map((b) => b.digest).sort());
    const expected = image.blobs.map((b) => `e2e/blobs/sha256/${b.digest.slice(7)}`).sort();
    // Commits finish just behind the last byte sent: wait for the keys to appear (a positive signal).
    await waitFor('every blob key in the bucket', async () => (await bucketKeys()).length >= expected.length);
    expect(await bucketKeys()).toEqual(expected);
    expect(await bucketKeys('manifests/')).toEqual([`e2e/manifests/sha256/${image.manifestDigest.slice(7)}`]);
    // The mapping under the client's Accept set, and under any.
    expect(await bucketKeys('tags/')).toEqual(['e2e/tags/docker.io/library/big/_tags/1.0/any.json', expect.stringMatching(/^e2e\/tags\/docker\.io\/library\/big\/_tags\/1\.0\/[0-9a-f]{16}\.json$/)]);

    await dist.flushLog();
    dist.resetLog();
    const warm = await pullThrough(a.url, 'library/big', '1.0');
    expect(warm.digest).toBe(cold.digest);
    await dist.flushLog();
    expect(dist.count('GET', /\/blobs\//)).toBe(0);
  });

  it('a second ocimirror with an empty cache dir serves the image from the bucket with the upstream down', async () => {
    const b = await proxyOnBucket();
    // Blobs, the manifest and the tag mapping (counted as one entry).
    expect(b.logs().find((l) => l.msg === 'cache ready')).toMatchObject({ entries: image.blobs.length + 2 });
    await dist.stop();
    try {
      const pulled = await pullThrough(b.url, 'library/big', '1.0');
      expect(pulled.blobs.sort()).toEqual(image.blobs.map((x) => x.digest).sort());
      const layer = image.layers[0]!;
      const whole = await fetchFrom(b.url, `/v2/library/big/blobs/${layer.digest}`);
      expect({ status: whole.status, size: whole.body.length, same: whole.body.equals(await blobBytes(layer)) }).toEqual({ status: 200, size: layer.size, same: true });
      const part = await fetchFrom(b.url, `/v2/library/big/blobs/${layer.digest}`, { headers: { range: `bytes=${8 * MiB - 2}-${8 * MiB + 1}` } });
      expect(part.status).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes ${8 * MiB - 2}-${8 * MiB + 1}/${layer.size}`);
      expect(part.body.equals((await blobBytes(layer)).subarray(8 * MiB - 2, 8 * MiB + 2))).toBe(true);
    } finally {
      await dist.start();
    }
  });
});

// Issue 8 rule 10: a manifest's Content-Type comes from the verified bytes, so a registry that lies about it can
// neither reach a client with text/html nor poison another registry's answer for the same digest; a cold blob HEAD
// never says Content-Length: NaN.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, sha256, type BuiltImage } from '../helpers/images.js';
import { fetchFrom, startTestProxy, type TestProxy } from '../helpers/proxy.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let liar: FaultUpstream; // serves the bare manifest as text/html
let wrong: FaultUpstream; // serves it as an index
let honest: FaultUpstream;
let proxy: TestProxy;
/** An OCI image manifest without the optional mediaType field: only its shape says what it is. */
let bare: BuiltImage;
let declared: BuiltImage;

/** The same image, served with another Content-Type (the manifest bytes, hence the digest, unchanged). */
const servedAs = (image: BuiltImage, mediaType: string): BuiltImage => ({ ...image, mediaType });

beforeAll(async () => {
  [liar, wrong, honest] = await Promise.all([startFaultUpstream(), startFaultUpstream(), startFaultUpstream()]);
  const image = await buildImage({ format: 'oci', label: 'media types' });
  const { mediaType: _, ...rest } = JSON.parse(image.manifest.toString('utf8')) as Record<string, unknown>;
  const manifest = Buffer.from(JSON.stringify(rest));
  bare = { ...image, manifest, manifestDigest: sha256(manifest) };
  declared = await buildImage({ format: 'docker', label: 'declared media type' });
  liar.add('library/types', 'html', servedAs(bare, 'text/html'));
  wrong.add('library/types', 'index', servedAs(bare, OCI_INDEX));
  wrong.add('library/types', 'index-again', servedAs(bare, OCI_INDEX));
  liar.add('library/types', 'declared', servedAs(declared, OCI_INDEX));
  honest.add('library/types', 'bare', bare);
  proxy = await startTestProxy({ mirrors: {
    'liar.example.test': { endpoint: [liar.url] }, 'wrong.example.test': { endpoint: [wrong.url] }, 'honest.example.test': { endpoint: [honest.url] },
  } });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([proxy?.close(), liar?.close(), wrong?.close(), honest?.close()]);
});

const typeOf = async (path: string, method: 'GET' | 'HEAD' = 'GET') => {
  const res = await fetchFrom(proxy.url, path, { method });
  expect(res.status, path).toBe(200);
  return res.headers['content-type'];
};

describe('a manifest\'s Content-Type', () => {
  it('is never an upstream\'s text/html: the manifest\'s shape decides (GET and HEAD)', async () => {
    expect(await typeOf('/v2/library/types/manifests/html?ns=liar.example.test', 'HEAD')).toBe(OCI_MANIFEST);
    expect(await typeOf('/v2/library/types/manifests/html?ns=liar.example.test')).toBe(OCI_MANIFEST);
  });

  it('is what the manifest declares, whatever the upstream said', async () => {
    expect(await typeOf('/v2/library/types/manifests/declared?ns=liar.example.test')).toBe(declared.mediaType);
  });

  it('one registry\'s wrong type for a digest does not reach a client of another registry', async () => {
    expect(await typeOf('/v2/library/types/manifests/index?ns=wrong.example.test')).toBe(OCI_MANIFEST);
    // Now cached under its digest: the honest registry's clients get the type the bytes say.
    expect(await typeOf(`/v2/library/types/manifests/${bare.manifestDigest}?ns=honest.example.test`)).toBe(OCI_MANIFEST);
    expect(await typeOf(`/v2/library/types/manifests/${bare.manifestDigest}?ns=honest.example.test`, 'HEAD')).toBe(OCI_MANIFEST);
    expect(honest.count('GET', /\/manifests\//)).toBe(0);
    // A HEAD cannot be verified, but for a manifest already held the verified type wins over what it says.
    expect(await typeOf('/v2/library/types/manifests/index-again?ns=wrong.example.test', 'HEAD')).toBe(OCI_MANIFEST);
  });
});

describe('a cold blob HEAD', () => {
  it('from an endpoint that sends no Content-Length learns the size instead of saying NaN', async () => {
    const blob = bare.config;
    honest.fault({ method: 'HEAD', path: /\/blobs\// }, { kind: 'no-length' });
    const res = await fetchFrom(proxy.url, `/v2/library/types/blobs/${blob.digest}?ns=honest.example.test`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(blob.size));
    expect(honest.count('HEAD', /\/blobs\//)).toBe(1);
    expect(honest.requests().filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).map((r) => r.headers.range)).toEqual(['bytes=0-0']);
  });

});

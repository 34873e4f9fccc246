// The HTTP surface via app.inject(): OCI error JSON, status codes, headers, routing, with a stub service.
import { Readable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { OciError } from '../../../src/oci/errors.js';
import type { BlobRequest, ListRequest, ManifestRequest, RegistryService } from '../../../src/oci/service.js';
import { planRange } from '../../../src/oci/range.js';
import { buildApp } from '../../../src/server/app.js';

const MANIFEST = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}');
const DIGEST = `sha256:${'1'.repeat(64)}`;
const BLOB = Buffer.from('0123456789');
const VIA = '1.1 ocimirror-test';

class StubService implements RegistryService {
  calls: (ManifestRequest | BlobRequest | ListRequest)[] = [];
  fail: Error | undefined;
  async manifest(req: ManifestRequest) {
    this.calls.push(req);
    if (this.fail) throw this.fail;
    return { digest: DIGEST, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: MANIFEST.length, ...(req.method === 'GET' ? { body: MANIFEST } : {}), endpoint: 'http://up' };
  }
  async blob(req: BlobRequest) {
    this.calls.push(req);
    if (this.fail) throw this.fail;
    const plan = planRange(req.method, req.range, BLOB.length);
    const bytes = plan.kind === 'partial' ? BLOB.subarray(plan.start, plan.end + 1) : BLOB;
    return { digest: req.digest, size: BLOB.length, plan, ...(plan.kind === 'full' || plan.kind === 'partial' ? { stream: Readable.from([bytes]) } : {}) };
  }
  async tags(req: ListRequest) {
    this.calls.push(req);
    return { body: Buffer.from('{"name":"x","tags":["a","b"]}'), contentType: 'application/json', link: `</v2/${req.repo}/tags/list?n=2&last=b>; rel="next"` };
  }
  async referrers(req: ListRequest & { digest: string }) {
    this.calls.push(req);
    return { body: Buffer.from('{"manifests":[]}'), contentType: 'application/vnd.oci.image.index.v1+json' };
  }
}

let app: FastifyInstance;
let service: StubService;

beforeEach(async () => {
  service = new StubService();
  const registries = ['docker.io', '127.0.0.1:5001'];
  app = buildApp({
    service, via: VIA, logger: pino({ level: 'silent' }),
    routing: { defaultRegistry: 'docker.io', resolve: (r: string) => (registries.includes(r) ? `mirror entry of ${r}` : undefined) },
  });
  await app.ready();
});
afterEach(async () => { await app.close(); });

function errors(body: string) {
  return (JSON.parse(body) as { errors: { code: string; message: string; detail?: unknown }[] }).errors;
}

describe('GET /v2/', () => {
  it('answers 200 {} with the API version header, for GET and HEAD', async () => {
    const res = await app.inject({ method: 'GET', url: '/v2/' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('{}');
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
    const head = await app.inject({ method: 'HEAD', url: '/v2/' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
  });
});

describe('OCI error JSON', () => {
  it('a bad digest → 400 DIGEST_INVALID, before the service is asked', async () => {
    for (const url of ['/v2/library/x/blobs/sha256:abc', '/v2/library/x/manifests/sha256:ABC', `/v2/library/x/referrers/md5:${'a'.repeat(32)}`]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(errors(res.body)).toEqual([expect.objectContaining({ code: 'DIGEST_INVALID', message: expect.any(String) })]);
    }
    expect(service.calls).toEqual([]);
  });

  it('a bad name or tag → 400 NAME_INVALID / TAG_INVALID', async () => {
    expect(errors((await app.inject({ url: '/v2/Library/X/manifests/1.0' })).body)[0]?.code).toBe('NAME_INVALID');
    const tag = await app.inject({ url: '/v2/library/x/manifests/.bad' });
    expect([tag.statusCode, errors(tag.body)[0]?.code]).toEqual([400, 'TAG_INVALID']);
    expect(service.calls).toEqual([]);
  });

  // What a pushing client really sends: the manifest media type on PUT, octet-stream on a blob upload PATCH.
  it.each([
    ['POST', `/v2/library/x/blobs/uploads/`, undefined, undefined],
    ['DELETE', `/v2/library/x/manifests/${DIGEST}`, undefined, undefined],
    ['PUT', '/v2/library/x/manifests/1.0', 'application/json', '{}'],
    ['PUT', '/v2/library/x/manifests/1.0', 'application/vnd.oci.image.manifest.v1+json', MANIFEST.toString()],
    ['PATCH', '/v2/library/x/blobs/uploads/abc', 'application/octet-stream', 'bytes'],
    ['PUT', `/v2/library/x/blobs/uploads/abc?digest=${DIGEST}`, 'application/octet-stream', 'bytes'],
  ] as const)('%s %s (%s) → 405 UNSUPPORTED', async (method, url, type, payload) => {
    const res = await app.inject({ method, url, ...(payload ? { payload } : {}), headers: type ? { 'content-type': type } : {} });
    expect(res.statusCode).toBe(405);
    expect(errors(res.body)[0]?.code).toBe('UNSUPPORTED');
  });

  it('an unknown path → 404 with an OCI error body', async () => {
    for (const url of ['/nope', '/v2/x', '/v2/_catalog', '/v2/x/tags/other', '/v3/x/manifests/1']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(errors(res.body)[0]?.code, url).toMatch(/^(NOT_FOUND|NAME_UNKNOWN)$/);
    }
  });

  it('an unconfigured registry → 404 NAME_UNKNOWN without asking the service', async () => {
    const res = await app.inject({ url: '/v2/org/app/manifests/1.0?ns=quay.io' });
    expect(res.statusCode).toBe(404);
    expect(errors(res.body)[0]).toMatchObject({ code: 'NAME_UNKNOWN', detail: { registry: 'quay.io' } });
    expect(service.calls).toEqual([]);
  });

  it('service errors keep their code and status; unexpected ones become 500 UNKNOWN', async () => {
    service.fail = new OciError('UNAVAILABLE', { attempts: ['http://a: HTTP 500'] }, { status: 504 });
    const res = await app.inject({ url: '/v2/library/x/manifests/1.0' });
    expect(res.statusCode).toBe(504);
    expect(errors(res.body)).toEqual([{ code: 'UNAVAILABLE', message: 'service unavailable', detail: { attempts: ['http://a: HTTP 500'] } }]);
    service.fail = new Error('boom');
    const boom = await app.inject({ url: '/v2/library/x/manifests/1.0' });
    expect([boom.statusCode, errors(boom.body)[0]?.code]).toEqual([500, 'UNKNOWN']);
  });

  it('a request that already passed through this mirror is a loop (508), never forwarded', async () => {
    const res = await app.inject({ url: '/v2/library/x/manifests/1.0', headers: { via: `1.1 other, ${VIA}` } });
    expect(res.statusCode).toBe(508);
    expect(errors(res.body)[0]?.code).toBe('UNAVAILABLE');
    expect(service.calls).toEqual([]);
  });
});

describe('routed responses', () => {
  it('decode ns, answer OCI-Namespace, and give the service the normalised repository', async () => {
    const res = await app.inject({ url: '/v2/x/manifests/1.0?ns=127.0.0.1%3A5001' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['oci-namespace']).toBe('127.0.0.1:5001');
    expect(service.calls[0]).toMatchObject({ registry: '127.0.0.1:5001', mirror: 'mirror entry of 127.0.0.1:5001', repo: 'x', ref: '1.0' });
    await app.inject({ url: '/v2/alpine/manifests/latest' });
    expect(service.calls[1]).toMatchObject({ registry: 'docker.io', repo: 'library/alpine' });
    await app.inject({ url: '/v2/127.0.0.1:5001/library/y/manifests/2' });
    expect(service.calls[2]).toMatchObject({ registry: '127.0.0.1:5001', repo: 'library/y' });
  });

  it('forwards the known media types of the client Accept, normalised (order, parameters and junk dropped)', async () => {
    await app.inject({ url: '/v2/x/manifests/1.0', headers: { accept: 'application/vnd.oci.image.index.v1+json;q=0.9, text/x-junk, */*' } });
    expect((service.calls[0] as ManifestRequest).accept).toBe('*/*, application/vnd.oci.image.index.v1+json');
  });

  it('manifest HEAD has no body but digest, length and type', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/v2/x/manifests/1.0' });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.length).toBe(0);
    expect(res.headers).toMatchObject({
      'docker-content-digest': DIGEST, 'content-length': String(MANIFEST.length), 'content-type': 'application/vnd.oci.image.manifest.v1+json',
    });
    const get = await app.inject({ url: '/v2/x/manifests/1.0' });
    expect(get.rawPayload.equals(MANIFEST)).toBe(true);
  });

  it('blobs: Range → 206 with Content-Range, unsatisfiable → 416, HEAD without body', async () => {
    const part = await app.inject({ url: `/v2/x/blobs/${DIGEST}`, headers: { range: 'bytes=2-5' } });
    expect([part.statusCode, part.body, part.headers['content-range'], part.headers['content-length']]).toEqual([206, '2345', 'bytes 2-5/10', '4']);
    const bad = await app.inject({ url: `/v2/x/blobs/${DIGEST}`, headers: { range: 'bytes=50-' } });
    expect([bad.statusCode, errors(bad.body)[0]?.code, bad.headers['content-range']]).toEqual([416, 'RANGE_INVALID', 'bytes */10']);
    const head = await app.inject({ method: 'HEAD', url: `/v2/x/blobs/${DIGEST}` });
    expect([head.statusCode, head.rawPayload.length, head.headers['content-length'], head.headers['docker-content-digest']]).toEqual([200, 0, '10', DIGEST]);
  });

  it('tags/list: only n and last go upstream; the Link comes back pointing here, keeping ns', async () => {
    const res = await app.inject({ url: '/v2/x/tags/list?n=2&ns=127.0.0.1%3A5001&evil=1' });
    expect(res.statusCode).toBe(200);
    expect((service.calls[0] as ListRequest).query).toBe('n=2');
    expect(res.headers.link).toBe('</v2/x/tags/list?n=2&last=b&ns=127.0.0.1%3A5001>; rel="next"');
  });
});

import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import type { Blob, BuiltImage, BuiltIndex } from './images.js';

export interface Credentials { username: string; password: string }
type Body = Buffer | Readable;
interface SendOptions { headers?: Record<string, string>; body?: () => Body; expect: number[] }

const basic = (c: Credentials) => 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');

export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const scheme = header.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const params: Record<string, string> = {};
  for (const [, key, value] of header.matchAll(/(\w+)="([^"]*)"/g)) if (key) params[key] = value ?? '';
  return { scheme, params };
}

/**
 * One registry + repository, authenticating on demand from WWW-Authenticate (Basic or Bearer token flow).
 * Bodies are factories so a request that met a 401 can be re-sent with a fresh file stream.
 */
export class RegistrySession {
  private authorization: string | undefined;

  constructor(readonly registryUrl: string, private readonly credentials?: Credentials) {}

  async send(method: Dispatcher.HttpMethod, pathOrUrl: string, opts: SendOptions): Promise<Dispatcher.ResponseData> {
    const url = new URL(pathOrUrl, this.registryUrl).toString();
    for (let attempt = 0; ; attempt++) {
      const headers = { ...opts.headers, ...(this.authorization ? { authorization: this.authorization } : {}) };
      const res = await request(url, { method, headers, body: opts.body?.() });
      if (res.statusCode === 401 && attempt === 0) {
        await res.body.dump();
        await this.authenticate(String(res.headers['www-authenticate'] ?? ''));
        continue;
      }
      if (!opts.expect.includes(res.statusCode)) {
        const text = method === 'HEAD' ? '' : await res.body.text();
        throw new Error(`${method} ${url}: expected ${opts.expect.join(' or ')}, got ${res.statusCode} ${text}`);
      }
      return res;
    }
  }

  private async authenticate(challenge: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === 'basic') {
      if (!this.credentials) throw new Error('registry wants Basic auth but no credentials were given');
      this.authorization = basic(this.credentials);
      return;
    }
    if (scheme !== 'bearer' || !params.realm) throw new Error(`unsupported challenge: ${challenge}`);
    // We are pushing: ask for push as well, so one token covers HEAD, upload and manifest PUT.
    const scope = params.scope?.replace(/^(repository:.+):[^:]+$/, '$1:pull,push');
    const tokenUrl = new URL(params.realm);
    if (params.service) tokenUrl.searchParams.set('service', params.service);
    if (scope) tokenUrl.searchParams.set('scope', scope);
    const res = await request(tokenUrl, { headers: this.credentials ? { authorization: basic(this.credentials) } : {} });
    if (res.statusCode !== 200) throw new Error(`token request ${tokenUrl} failed: ${res.statusCode} ${await res.body.text()}`);
    const body = (await res.body.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error('token response carried neither token nor access_token');
    this.authorization = `Bearer ${token}`;
  }
}

/** Monolithic upload: POST to open a session, then one PUT that streams the blob (files are never read whole). */
export async function pushBlob(session: RegistrySession, repo: string, blob: Blob): Promise<void> {
  const head = await session.send('HEAD', `/v2/${repo}/blobs/${blob.digest}`, { expect: [200, 404] });
  await head.body.dump();
  if (head.statusCode === 200) return;
  const started = await session.send('POST', `/v2/${repo}/blobs/uploads/`, { expect: [202] });
  await started.body.dump();
  const location = started.headers.location;
  if (typeof location !== 'string') throw new Error(`upload of ${blob.digest} to ${repo}: 202 without Location`);
  const target = new URL(location, session.registryUrl);
  target.searchParams.set('digest', blob.digest);
  const { data, file } = blob;
  if (!data && !file) throw new Error(`blob ${blob.digest} has neither data nor file`);
  const done = await session.send('PUT', target.toString(), {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    body: () => data ?? fs.createReadStream(file!),
    expect: [201],
  });
  await done.body.dump();
}

export async function pushManifest(session: RegistrySession, repo: string, reference: string, manifest: Buffer, mediaType: string): Promise<void> {
  const res = await session.send('PUT', `/v2/${repo}/manifests/${reference}`, {
    headers: { 'content-type': mediaType }, body: () => manifest, expect: [201],
  });
  await res.body.dump();
}

async function pushImageWith(session: RegistrySession, repo: string, reference: string, image: BuiltImage): Promise<void> {
  for (const blob of image.blobs) await pushBlob(session, repo, blob);
  await pushManifest(session, repo, reference, image.manifest, image.mediaType);
}

export async function pushImage(registryUrl: string, repo: string, tag: string, image: BuiltImage, auth?: Credentials): Promise<void> {
  await pushImageWith(new RegistrySession(registryUrl, auth), repo, tag, image);
}

/** Children by digest first: Distribution rejects an index whose manifests it does not hold. */
export async function pushIndex(registryUrl: string, repo: string, tag: string, index: BuiltIndex, auth?: Credentials): Promise<void> {
  const session = new RegistrySession(registryUrl, auth);
  for (const { image } of index.images) await pushImageWith(session, repo, image.manifestDigest, image);
  await pushManifest(session, repo, tag, index.manifest, index.mediaType);
}

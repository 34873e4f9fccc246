// The HTTP side of `warm`: asks a running ocimirror for manifests and blobs exactly as containerd would (same
// Accept, ?ns=<registry>), so what lands in the cache is what nodes will ask for. Every body is checked against
// its digest: a warm that "succeeds" with bad bytes would be worse than one that fails.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import type { ImageRef } from './reference.js';

// containerd's resolve Accept: the tag mapping the proxy caches is keyed by it, so nodes later hit the same entry.
export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', '*/*',
].join(', ');

export class WarmError extends Error {
  override readonly name = 'WarmError';
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
}

export interface ProxyClientOptions {
  /** PEM file of the CA that signed the proxy's certificate (an https proxy with a private CA). */
  caFile?: string;
  /** Longest wait for response headers; a cold blob is answered once its fill knows the size. */
  headersTimeoutMs?: number;
  /** Longest silence inside a body. */
  bodyTimeoutMs?: number;
}

export class ProxyClient {
  private readonly dispatcher: Dispatcher;
  private readonly base: string;

  constructor(proxyUrl: string, opts: ProxyClientOptions = {}) {
    const u = new URL(proxyUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new WarmError(`--proxy: expected an http(s):// URL, got ${JSON.stringify(proxyUrl)}`);
    this.base = `${u.protocol}//${u.host}`;
    this.dispatcher = new Agent({
      connect: { timeout: 10_000, ...(opts.caFile ? { ca: readFileSync(opts.caFile) } : {}) },
      headersTimeout: opts.headersTimeoutMs ?? 300_000,
      bodyTimeout: opts.bodyTimeoutMs ?? 120_000,
    });
  }

  get url(): string {
    return this.base;
  }

  /** GET a manifest by tag or digest; the bytes must hash to the digest the proxy names (and the one asked for). */
  async manifest(ref: ImageRef, reference = ref.reference): Promise<FetchedManifest> {
    const res = await this.get(ref, `manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    const body = Buffer.from(await res.body.arrayBuffer());
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const named = header(res.headers, 'docker-content-digest');
    if ((named && named !== digest) || (reference.startsWith('sha256:') && reference !== digest)) {
      throw new WarmError(`manifest ${reference}: received bytes with digest ${digest}, expected ${reference.startsWith('sha256:') ? reference : named}`);
    }
    return { digest, mediaType: header(res.headers, 'content-type') ?? '', body };
  }

  /** GET a blob and discard it (the point is the proxy's cache), reporting bytes as they arrive. */
  async blob(ref: ImageRef, digest: string, onBytes: (n: number) => void): Promise<number> {
    const res = await this.get(ref, `blobs/${digest}`, {});
    const [algorithm, expected] = digest.split(':') as [string, string];
    const hash = createHash(algorithm);
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      onBytes(chunk.length);
    }
    const got = hash.digest('hex');
    if (got !== expected) throw new WarmError(`blob ${digest}: received bytes with digest ${algorithm}:${got}`);
    return size;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async get(ref: ImageRef, path: string, headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    const url = `${this.base}/v2/${ref.repo}/${path}?ns=${encodeURIComponent(ref.registry)}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', headers: { ...headers, 'user-agent': 'ocimirror-warm' }, dispatcher: this.dispatcher });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      const msg = err.message ?? String(e);
      throw new WarmError(`cannot reach the proxy at ${this.base}: ${err.code && !msg.includes(err.code) ? `${err.code} ` : ''}${msg}`);
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      throw new WarmError(`GET ${path}: HTTP ${res.statusCode}${describeOciError(text)}`);
    }
    return res;
  }
}

/** " CODE: message (detail)" from an OCI error body, or "" when the body is not one. */
function describeOciError(text: string): string {
  try {
    const e = (JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] }).errors?.[0];
    if (!e) return '';
    const detail = e.detail === undefined ? '' : ` (${typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)})`;
    return ` ${e.code ?? 'ERROR'}: ${e.message ?? ''}${detail}`.replace(/\s+/g, ' ').trimEnd();
  } catch {
    return '';
  }
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

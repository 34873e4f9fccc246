// One upstream endpoint: a keep-alive pool with the endpoint's TLS, its credentials (sent to it and to the token
// realm it names, nowhere else), and redirects followed by hand so Authorization is dropped on a host change.
import { readFileSync } from 'node:fs';
import { Agent, Pool, request, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import type { Endpoint } from '../config/endpoints.js';
import type { RegistryConfigEntry } from '../config/schema.js';
import { credentialsFrom, basicHeader, type Credentials } from './credentials.js';
import { TokenCache } from './tokens.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

export interface ClientTimeouts { connectTimeoutMs: number; responseTimeoutMs: number; readTimeoutMs: number }

export type Headers = Record<string, string | string[] | undefined>;

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Readable & { dump(): Promise<void> };
  /** True when a 401/403 came back although credentials or a token were sent. */
  authAttempted: boolean;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class EndpointClient {
  readonly name: string;
  private readonly pool: Pool;
  private readonly creds: Credentials | undefined;
  private readonly tokens = new TokenCache();
  private readonly tlsOptions: { ca?: Buffer; rejectUnauthorized: boolean };
  private realmAgent: Agent | undefined;
  private basicRequired = false;

  constructor(
    readonly endpoint: Endpoint,
    hostConfig: RegistryConfigEntry | undefined,
    private readonly timeouts: ClientTimeouts,
    private readonly via: string,
    /** Shared agent for redirect targets on other hosts (CDNs): no client certificate, no credentials. */
    private readonly redirectAgent: Dispatcher,
  ) {
    this.name = `${endpoint.origin}${endpoint.apiRoot === '/v2' ? '' : endpoint.apiRoot}`;
    const tls = hostConfig?.tls;
    this.tlsOptions = { ...(tls?.ca_file ? { ca: readFileSync(tls.ca_file) } : {}), rejectUnauthorized: !tls?.insecure_skip_verify };
    this.pool = new Pool(endpoint.origin, {
      connections: 64,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: timeouts.responseTimeoutMs,
      bodyTimeout: timeouts.readTimeoutMs,
      connect: {
        timeout: timeouts.connectTimeoutMs,
        ...this.tlsOptions,
        ...(tls?.cert_file && tls.key_file ? { cert: readFileSync(tls.cert_file), key: readFileSync(tls.key_file) } : {}),
      },
    });
    this.creds = credentialsFrom(hostConfig?.auth);
  }

  /**
   * Sends `method apiRoot+path` with the endpoint's authentication. `scope` is the token scope for this
   * repository ("repository:<name>:pull"), or "" for the API root.
   */
  async request(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, scope: string, signal?: AbortSignal): Promise<UpstreamResponse> {
    let sentAuth = this.authorization(scope);
    let res = await this.send(method, path, headers, sentAuth, signal);
    if (res.status === 401) {
      const challenges = parseWwwAuthenticate(res.headers['www-authenticate']);
      const bearer = challenges.find((c) => c.scheme === 'bearer');
      const basic = challenges.find((c) => c.scheme === 'basic');
      let retryAuth: string | undefined;
      if (bearer) {
        await res.body.dump();
        if (sentAuth) this.tokens.invalidate(scope);
        const dispatcher = this.dispatcherForRealm(bearer.params.realm);
        const token = await this.tokens.fetch(bearer, scope, this.creds, dispatcher, this.via, this.timeouts.responseTimeoutMs);
        retryAuth = `Bearer ${token}`;
      } else if (basic && this.creds && !sentAuth) {
        await res.body.dump();
        this.basicRequired = true;
        retryAuth = basicHeader(this.creds);
      }
      if (retryAuth) {
        sentAuth = retryAuth;
        res = await this.send(method, path, headers, retryAuth, signal);
      }
    }
    return { ...res, authAttempted: sentAuth !== undefined && (res.status === 401 || res.status === 403) };
  }

  /** GET <apiRoot>/ without credentials: any answer below 500 (401 included) shows the endpoint is alive. */
  async ping(signal?: AbortSignal): Promise<number> {
    const res = await this.send('GET', '/', {}, undefined, signal);
    await res.body.dump().catch(() => undefined);
    return res.status;
  }

  private authorization(scope: string): string | undefined {
    const token = this.tokens.get(scope);
    if (token) return `Bearer ${token}`;
    if (this.basicRequired && this.creds) return basicHeader(this.creds);
    return undefined;
  }

  private async send(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, auth: string | undefined, signal?: AbortSignal): Promise<Omit<UpstreamResponse, 'authAttempted'>> {
    let url = new URL(`${this.endpoint.origin}${this.endpoint.apiRoot}${path}`);
    let authorization = auth;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.endpoint.origin;
      const dispatcher = sameOrigin ? this.pool : this.redirectAgent;
      const res = await request(url, {
        method,
        dispatcher,
        signal,
        headersTimeout: this.timeouts.responseTimeoutMs,
        bodyTimeout: this.timeouts.readTimeoutMs,
        headers: { ...headers, via: this.via, ...(authorization ? { authorization } : {}) },
      });
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump();
        if (hop >= MAX_REDIRECTS) throw new RedirectError(`more than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, url);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new RedirectError(`redirect to ${next.protocol}`);
        // Never forward this endpoint's credentials to another host (a CDN, or anything a Location names).
        if (next.origin !== this.endpoint.origin) authorization = undefined;
        url = next;
        continue;
      }
      return { status: res.statusCode, headers: res.headers as Headers, body: res.body as UpstreamResponse['body'] };
    }
  }

  /** Token realms on the endpoint's own origin use its pool (and TLS); others get an agent trusting the same CA. */
  private dispatcherForRealm(realm: string | undefined): Dispatcher {
    try {
      if (realm && new URL(realm).origin === this.endpoint.origin) return this.pool;
    } catch { /* an invalid realm fails in the token fetch with a clear message */ }
    this.realmAgent ??= new Agent({ connect: { timeout: this.timeouts.connectTimeoutMs, ...this.tlsOptions } });
    return this.realmAgent;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.pool.close(), this.realmAgent?.close()]);
  }
}

export class RedirectError extends Error {
  override readonly name = 'RedirectError';
}

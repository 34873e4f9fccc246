// One upstream endpoint: a keep-alive pool with the endpoint's TLS, its credentials (sent to it and to the token
// realm its own challenge names, nowhere else), and redirects followed by hand so Authorization is dropped on a
// host change. Every connection (pool, redirect hop, token realm) is checked against the private-address policy.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, Pool, request, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import type { Endpoint } from '../config/endpoints.js';
import type { RegistryConfigEntry } from '../config/schema.js';
import { isPrivateAddress } from './addresses.js';
import { guardedConnector, type NetworkHooks } from './connector.js';
import { credentialsFrom, basicHeader, type Credentials } from './credentials.js';
import { TokenCache, TokenError } from './tokens.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

export interface ClientTimeouts { connectTimeoutMs: number; responseTimeoutMs: number; readTimeoutMs: number }

/** Where an endpoint's connections may go. */
export interface EndpointNetwork {
  hooks: NetworkHooks;
  /** upstream.allowPrivateNetworks: every address is allowed. */
  allowPrivateNetworks: boolean;
  /** Named in the config (false: the own endpoint of a registry a client named under "*"). */
  explicit: boolean;
  /** Shared agents for redirect targets on other hosts (CDNs): no client certificate, no credentials. */
  redirectAgents: { publicOnly: Dispatcher; any: Dispatcher };
}

export type Headers = Record<string, string | string[] | undefined>;

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Readable & { dump(): Promise<void> };
  /** True when a 401/403 came back although credentials or a token were sent. */
  authAttempted: boolean;
}

interface SentResponse extends Omit<UpstreamResponse, 'authAttempted'> {
  /** The answer came from the endpoint's own origin (not from a host a redirect led to). */
  fromEndpoint: boolean;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

type PoolTls = { ca?: Buffer; rejectUnauthorized: boolean; cert?: Buffer; key?: Buffer };
/**
 * TLS files are read once per configs entry, not once per client: under a "*" mirror every new registry host gets
 * a client, and a synchronous read per client would let a stream of new names stall the event loop on the disk.
 */
const tlsFiles = new WeakMap<RegistryConfigEntry, PoolTls>();
const NO_CONFIG: RegistryConfigEntry = {};
function tlsFilesOf(hostConfig: RegistryConfigEntry | undefined): PoolTls {
  const key = hostConfig ?? NO_CONFIG;
  let read = tlsFiles.get(key);
  if (!read) {
    const tls = hostConfig?.tls;
    const ca = tls?.ca_file ? readFileSync(tls.ca_file) : undefined;
    read = {
      ...(ca ? { ca } : {}),
      rejectUnauthorized: !tls?.insecure_skip_verify,
      ...(tls?.cert_file && tls.key_file ? { cert: readFileSync(tls.cert_file), key: readFileSync(tls.key_file) } : {}),
    };
    tlsFiles.set(key, read);
  }
  return read;
}

export class EndpointClient {
  readonly name: string;
  private current: Pool | undefined;
  private readonly creds: Credentials | undefined;
  private readonly tokens = new TokenCache();
  private readonly caFile: Buffer | undefined;
  private readonly poolTls: PoolTls;
  private realmAgent: Agent | undefined;
  private basicRequired = false;
  /** The last connection to this endpoint reached a private address (its redirects and realm may too). */
  private onPrivateNetwork = false;

  constructor(
    readonly endpoint: Endpoint,
    hostConfig: RegistryConfigEntry | undefined,
    private readonly timeouts: ClientTimeouts,
    private readonly via: string,
    private readonly network: EndpointNetwork,
  ) {
    this.name = `${endpoint.origin}${endpoint.apiRoot === '/v2' ? '' : endpoint.apiRoot}`;
    this.poolTls = tlsFilesOf(hostConfig);
    this.caFile = this.poolTls.ca;
    this.creds = credentialsFrom(hostConfig?.auth);
  }

  /** The keep-alive pool, created on first use (and again after retire(), for a request already under way). */
  private get pool(): Pool {
    this.current ??= new Pool(this.endpoint.origin, {
      connections: 64,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeouts.responseTimeoutMs,
      bodyTimeout: this.timeouts.readTimeoutMs,
      connect: guardedConnector({ timeout: this.timeouts.connectTimeoutMs, ...this.poolTls }, {
        hooks: this.network.hooks,
        allowPrivate: () => this.network.allowPrivateNetworks || this.network.explicit,
        onConnect: (address) => { this.onPrivateNetwork = (this.network.hooks.isPrivate ?? isPrivateAddress)(address); },
      }),
    });
    return this.current;
  }

  /** Hosts this endpoint sends us to (redirects, a foreign token realm) may be private only if it is itself. */
  private hopsMayBePrivate(): boolean {
    return this.network.allowPrivateNetworks || (this.network.explicit && this.onPrivateNetwork);
  }

  /**
   * Sends `method apiRoot+path` with the endpoint's authentication. `scope` is the token scope for this
   * repository ("repository:<name>:pull"), or "" for the API root.
   */
  async request(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, scope: string, signal?: AbortSignal): Promise<UpstreamResponse> {
    let sentAuth = this.authorization(scope);
    let res = await this.send(method, path, headers, sentAuth, signal);
    // Only the endpoint's own challenge is answered: a 401 from a host a redirect led to never gets our credentials.
    if (res.status === 401 && res.fromEndpoint) {
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
    const { fromEndpoint: _, ...out } = res;
    return { ...out, authAttempted: sentAuth !== undefined && (res.status === 401 || res.status === 403) };
  }

  /** GET <apiRoot>/ without credentials: any answer below 500 (401 included) shows the endpoint is alive. */
  async ping(signal?: AbortSignal): Promise<number> {
    const res = await this.send('GET', '/', {}, undefined, signal);
    await res.body.dump();
    return res.status;
  }

  private authorization(scope: string): string | undefined {
    const token = this.tokens.get(scope);
    if (token) return `Bearer ${token}`;
    if (this.basicRequired && this.creds) return basicHeader(this.creds);
    return undefined;
  }

  private async send(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, auth: string | undefined, signal?: AbortSignal): Promise<SentResponse> {
    let url = new URL(`${this.endpoint.origin}${this.endpoint.apiRoot}${path}`);
    let authorization = auth;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.endpoint.origin;
      const { publicOnly, any } = this.network.redirectAgents;
      const dispatcher = sameOrigin ? this.pool : this.hopsMayBePrivate() ? any : publicOnly;
      const res = await request(url, {
        method,
        dispatcher,
        signal,
        headersTimeout: this.timeouts.responseTimeoutMs,
        bodyTimeout: this.timeouts.readTimeoutMs,
        // undici closes the connection after every HEAD unless told not to; tag revalidations are HEADs, and a
        // registry never sends a HEAD body, so keep the (often TLS) connection for the next one.
        reset: false,
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
      return { status: res.statusCode, headers: res.headers as Headers, body: res.body as UpstreamResponse['body'], fromEndpoint: sameOrigin };
    }
  }

  /**
   * A realm on the endpoint's own origin uses its pool (and TLS). A foreign realm must be https unless the endpoint
   * is plain http, and gets neither the client certificate nor insecure_skip_verify: only the endpoint's CA, besides
   * the system's.
   */
  private dispatcherForRealm(realm: string | undefined): Dispatcher {
    let url: URL;
    try { url = new URL(realm ?? ''); } catch { throw new TokenError(`Bearer challenge with an invalid realm ${JSON.stringify(realm ?? '')}`); }
    if (url.origin === this.endpoint.origin) return this.pool;
    if (url.protocol === 'http:' && this.endpoint.origin.startsWith('https:')) {
      throw new TokenError(`token realm ${url.origin} is plain http, but the endpoint is https: refusing to send credentials or trust its token`);
    }
    this.realmAgent ??= new Agent({
      headersTimeout: this.timeouts.responseTimeoutMs,
      bodyTimeout: this.timeouts.responseTimeoutMs,
      connect: guardedConnector({ timeout: this.timeouts.connectTimeoutMs, ...(this.caFile ? { ca: [...rootCertificates, this.caFile.toString('utf8')] } : {}) }, {
        hooks: this.network.hooks,
        allowPrivate: () => this.hopsMayBePrivate(),
      }),
    });
    return this.realmAgent;
  }

  /** Closes the connections once the requests on them finish; a later request (one already under way) reopens. */
  async retire(): Promise<void> {
    const pool = this.current;
    const realm = this.realmAgent;
    this.current = undefined;
    this.realmAgent = undefined;
    await Promise.all([pool?.close(), realm?.close()]);
  }

  async close(): Promise<void> {
    await this.retire();
  }
}

export class RedirectError extends Error {
  override readonly name = 'RedirectError';
}

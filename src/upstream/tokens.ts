// The distribution token flow: fetch a Bearer token from the realm a challenge names, anonymously or with the
// endpoint's own credentials (GET with Basic, or the OAuth2 POST form for identity tokens), cached per scope
// until it expires (at most MAX_SCOPES per endpoint: scopes name repositories, which clients choose).
import { LRUCache } from 'lru-cache';
import { request, type Dispatcher } from 'undici';
import { readCapped } from './capped-body.js';
import type { Challenge } from './www-authenticate.js';
import { basicHeader, type Credentials } from './credentials.js';

/** Token responses are small JSON; anything larger is not a token server we want to hear from. */
const MAX_TOKEN_RESPONSE = 64 * 1024;
const MAX_SCOPES = 1000;

export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(message: string, readonly status?: number) { super(message); }
}

export class TokenCache {
  private readonly tokens = new LRUCache<string, string>({ max: MAX_SCOPES, ttlAutopurge: false });

  get(scope: string): string | undefined {
    return this.tokens.get(scope);
  }

  invalidate(scope: string): void {
    this.tokens.delete(scope);
  }

  /** Fetches (and caches) a token for `scope` from the challenge's realm. */
  async fetch(challenge: Challenge, scope: string, creds: Credentials | undefined, dispatcher: Dispatcher, via: string, timeoutMs: number): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new TokenError('Bearer challenge without a realm');
    let realmUrl: URL;
    try { realmUrl = new URL(realm); } catch { throw new TokenError(`Bearer challenge with an invalid realm ${JSON.stringify(realm)}`); }
    if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') throw new TokenError('token realm is not http(s)');
    const service = challenge.params.service;
    // The endpoint's own challenge knows its repository naming best (containerd also asks for that scope).
    const effectiveScope = challenge.params.scope || scope;
    const common = { dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs * 2) };
    let res: Dispatcher.ResponseData;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'ocimirror' });
      if (service) form.set('service', service);
      if (effectiveScope) form.set('scope', effectiveScope);
      res = await request(realmUrl, { ...common, method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', via } });
    } else {
      if (service) realmUrl.searchParams.set('service', service);
      if (effectiveScope) realmUrl.searchParams.set('scope', effectiveScope);
      const auth = creds ? basicHeader(creds) : undefined;
      res = await request(realmUrl, { ...common, method: 'GET', headers: { via, ...(auth ? { authorization: auth } : {}) } });
      if (auth && (res.statusCode === 404 || res.statusCode === 405)) {
        // Some token servers only implement the OAuth2 password grant.
        await res.body.dump();
        const form = new URLSearchParams({ grant_type: 'password', username: creds?.username ?? '', password: creds?.password ?? '', client_id: 'ocimirror' });
        if (service) form.set('service', service);
        if (effectiveScope) form.set('scope', effectiveScope);
        realmUrl.search = '';
        res = await request(realmUrl, { ...common, method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', via } });
      }
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new TokenError(`token server ${realmUrl.origin} answered ${res.statusCode}`, res.statusCode);
    }
    const json = await readTokenJson(res, realmUrl.origin);
    const token = typeof json.token === 'string' && json.token ? json.token : json.access_token;
    if (typeof token !== 'string' || !token) throw new TokenError(`token server ${realmUrl.origin} returned no token`);
    const issued = typeof json.issued_at === 'string' ? Date.parse(json.issued_at) : NaN;
    const start = Number.isFinite(issued) ? Math.min(issued, Date.now()) : Date.now();
    // Expire a little early so a token never runs out between check and use.
    const expiresIn = typeof json.expires_in === 'number' && Number.isFinite(json.expires_in) ? json.expires_in : 60;
    const lifetime = Math.min(Math.max(10, expiresIn), 24 * 3600) * 1000;
    const ttl = start + lifetime * 0.9 - Date.now();
    // Cached under the scope we look it up by, whatever the challenge called it.
    if (ttl > 0) this.tokens.set(scope, token, { ttl });
    return token;
  }
}

interface TokenJson { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown }

/** The token response, read with a cap checked before and while reading. */
async function readTokenJson(res: Dispatcher.ResponseData, origin: string): Promise<TokenJson> {
  const tooLarge = (declared?: number) => new TokenError(declared === undefined
    ? `token server ${origin} sent more than ${MAX_TOKEN_RESPONSE} bytes`
    : `token server ${origin} sent ${declared} bytes (more than ${MAX_TOKEN_RESPONSE})`);
  const body = await readCapped(res.body, MAX_TOKEN_RESPONSE, Number(res.headers['content-length']), tooLarge);
  try {
    const json = JSON.parse(body.toString('utf8')) as unknown;
    if (json && typeof json === 'object') return json as TokenJson;
  } catch (e) {
    throw new TokenError(`token server ${origin} sent invalid JSON: ${(e as Error).message}`);
  }
  throw new TokenError(`token server ${origin} sent JSON that is not an object`);
}

// The distribution token flow: fetch a Bearer token from the realm a challenge names, anonymously or with the
// endpoint's own credentials (GET with Basic, or the OAuth2 POST form for identity tokens), cached per scope
// until it expires.
import { request, type Dispatcher } from 'undici';
import type { Challenge } from './www-authenticate.js';
import { basicHeader, type Credentials } from './credentials.js';

interface CachedToken { token: string; expiresAt: number }

export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(message: string, readonly status?: number) { super(message); }
}

export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();

  get(scope: string): string | undefined {
    const t = this.tokens.get(scope);
    if (!t) return undefined;
    if (Date.now() >= t.expiresAt) { this.tokens.delete(scope); return undefined; }
    return t.token;
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
    const json = (await res.body.json()) as { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    const token = json.token ?? json.access_token;
    if (!token) throw new TokenError(`token server ${realmUrl.origin} returned no token`);
    const issued = json.issued_at ? Date.parse(json.issued_at) : NaN;
    const start = Number.isFinite(issued) ? Math.min(issued, Date.now()) : Date.now();
    // Expire a little early so a token never runs out between check and use.
    const lifetime = Math.max(10, json.expires_in ?? 60) * 1000;
    // Cached under the scope we look it up by, whatever the challenge called it.
    this.tokens.set(scope, { token, expiresAt: start + lifetime * 0.9 });
    return token;
  }
}

import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { makeTmpDir, removeTmpDir } from './tmp.js';

export interface TokenRequest { method: 'GET' | 'POST'; service?: string; scope?: string; user?: string; grantType?: string; host: string }
export interface TokenServer {
  readonly url: string; readonly realm: string; readonly service: string; readonly issuer: string; readonly certFile: string;
  /** Every token request seen: method, query/form params, the user it authenticated as (Basic or form) and Host. */
  requests(): TokenRequest[];
  close(): Promise<void>;
}
export interface TokenServerOptions {
  users?: Record<string, string>; allowAnonymousPull?: boolean; expiresIn?: number; service?: string; issuer?: string;
}

export interface SelfSignedCert { certFile: string; keyFile: string; cert: string; key: string }

/** A P-256 self-signed certificate for 127.0.0.1/localhost: signs tokens here and serves TLS in fault-upstream. */
export function generateSelfSignedCert(dir: string, commonName = 'ocimirror-test'): SelfSignedCert {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${commonName}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
  ], { stdio: 'pipe' });
  return { certFile, keyFile, cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(data: Buffer): string {
  let bits = 0, value = 0, out = '';
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) { out += BASE32[(value >>> (bits - 5)) & 31]; bits -= 5; }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** libtrust key ID, which Distribution 2.8 uses to find the rootcertbundle key named by a token's `kid`. */
export function libtrustKeyId(publicKey: crypto.KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const encoded = base32(crypto.createHash('sha256').update(der).digest().subarray(0, 30));
  return encoded.match(/.{4}/g)!.join(':');
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

interface Access { type: string; name: string; actions: string[] }

/** "repository:127.0.0.1:5000/foo:pull,push" → names may contain ':', so split at the first and last one. */
function parseScopes(scopes: string[]): Access[] {
  return scopes.flatMap((s) => s.split(' ')).filter(Boolean).flatMap((scope) => {
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first < 0 || last === first) return [];
    return [{ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',') }];
  });
}

function basicUser(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const users = opts.users ?? {};
  const expiresIn = opts.expiresIn ?? 300;
  const service = opts.service ?? 'ocimirror-test-registry';
  const issuer = opts.issuer ?? 'ocimirror-test-issuer';
  const dir = makeTmpDir('ocimirror-token-');
  const { certFile, key } = generateSelfSignedCert(dir, 'ocimirror-test-token');
  const privateKey = crypto.createPrivateKey(key);
  const kid = libtrustKeyId(crypto.createPublicKey(privateKey));
  const seen: TokenRequest[] = [];
  const refreshTokens = new Map<string, string>();

  function sign(user: string | undefined, access: Access[]): string {
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', kid }));
    const claims = b64url(JSON.stringify({
      iss: issuer, sub: user ?? '', aud: service, exp: now + expiresIn, nbf: now - 10, iat: now,
      jti: crypto.randomUUID(), access,
    }));
    // JWS ES256 wants the raw r||s signature, not DER.
    const signature = crypto.sign('sha256', Buffer.from(`${head}.${claims}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${head}.${claims}.${b64url(signature)}`;
  }

  function grant(user: string | undefined, requested: Access[]): Access[] {
    // Known users may pull and push (so tests can push through the token flow); anonymous callers only pull.
    const allowed = user !== undefined ? ['pull', 'push', 'delete'] : opts.allowAnonymousPull ? ['pull'] : [];
    return requested.filter((a) => a.type === 'repository')
      .map((a) => ({ ...a, actions: a.actions.filter((action) => allowed.includes(action)) }));
  }

  const deny = (res: http.ServerResponse, status: number, message: string) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message, detail: null }] }));
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) return deny(res, 404, 'not found');
    const params = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : url.searchParams;
    const grantType = params.get('grant_type') ?? undefined;
    const basic = basicUser(req.headers.authorization);
    let user: string | undefined;
    let claimed: string | undefined = basic?.user;
    if (req.method === 'POST' && grantType === 'refresh_token') {
      claimed = user = refreshTokens.get(params.get('refresh_token') ?? '');
      if (user === undefined) claimed = params.get('username') ?? undefined;
    } else if (req.method === 'POST') {
      claimed = params.get('username') ?? undefined;
      if (claimed !== undefined && users[claimed] === params.get('password')) user = claimed;
    } else if (basic && users[basic.user] === basic.password) {
      user = basic.user;
    }
    seen.push({
      method: req.method, service: params.get('service') ?? undefined, scope: params.getAll('scope').join(' ') || undefined,
      user: claimed, grantType, host: req.headers.host ?? '',
    });
    if (claimed !== undefined && user === undefined) return deny(res, 401, 'invalid credentials');
    if (user === undefined && !opts.allowAnonymousPull) return deny(res, 401, 'authentication required');
    const token = sign(user, grant(user, parseScopes(params.getAll('scope'))));
    const body: Record<string, unknown> = { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() };
    if (req.method === 'POST' && user !== undefined) {
      const refresh = crypto.randomBytes(16).toString('hex');
      refreshTokens.set(refresh, user);
      body.refresh_token = refresh;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => { if (!res.headersSent) deny(res, 500, String(err)); else res.destroy(); });
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token server has no TCP address');
  const url = `http://127.0.0.1:${address.port}`;
  return {
    url, realm: `${url}/token`, service, issuer, certFile,
    requests: () => seen.map((r) => ({ ...r })),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeTmpDir(dir);
    },
  };
}

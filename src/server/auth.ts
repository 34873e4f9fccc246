// Optional client authentication for the proxy itself: HTTP Basic against an htpasswd file of bcrypt hashes (what
// `htpasswd -B` writes, and what CNCF Distribution accepts). Applies to /v2/ only: health and metrics stay open.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import type { FastifyInstance } from 'fastify';
import { LRUCache } from 'lru-cache';
import { OciError } from '../oci/errors.js';
import { ConfigError } from '../config/validate.js';
import { sendError } from './errors.js';

/** Reads `user:$2y$…` lines; anything but bcrypt is refused at start-up with its line number. */
export function loadHtpasswd(file: string): Map<string, string> {
  const users = new Map<string, string>();
  const problems: string[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const at = line.indexOf(':');
    const user = line.slice(0, at);
    const hash = line.slice(at + 1);
    if (at <= 0 || !/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) {
      problems.push(`${file}:${i + 1}:1: expected user:bcrypt-hash (create it with \`htpasswd -B\`), got ${at > 0 ? `a non-bcrypt hash for ${JSON.stringify(user)}` : 'no user:hash pair'}`);
      return;
    }
    users.set(user, hash);
  });
  if (problems.length) throw new ConfigError(problems);
  if (users.size === 0) throw new ConfigError([`${file}: expected at least one user:bcrypt-hash line`]);
  return users;
}

export function authPlugin(opts: { htpasswd: string; realm: string }): (app: FastifyInstance) => void {
  const users = loadHtpasswd(opts.htpasswd);
  // bcrypt costs tens of milliseconds on purpose: remember headers that checked out (by hash, never in clear).
  const verified = new LRUCache<string, true>({ max: 10_000, ttl: 10 * 60_000 });
  const challenge = `Basic realm="${opts.realm.replace(/"/g, '')}"`;

  async function allowed(header: string | undefined): Promise<boolean> {
    if (!header?.startsWith('Basic ')) return false;
    const key = createHash('sha256').update(header).digest('hex');
    if (verified.get(key)) return true;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    const hash = i > 0 ? users.get(decoded.slice(0, i)) : undefined;
    if (!hash || !(await bcrypt.compare(decoded.slice(i + 1), hash))) return false;
    verified.set(key, true);
    return true;
  }

  return (app) => {
    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/v2')) return undefined;
      if (await allowed(req.headers.authorization)) return undefined;
      reply.header('docker-distribution-api-version', 'registry/2.0');
      return sendError(reply, new OciError('UNAUTHORIZED', undefined, { headers: { 'www-authenticate': challenge } }));
    });
  };
}

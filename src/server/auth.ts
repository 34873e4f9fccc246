// Optional client authentication for the proxy itself: HTTP Basic against an htpasswd file of bcrypt hashes (what
// `htpasswd -B` writes, and what CNCF Distribution accepts). Every path needs it except health, readiness and
// metrics. bcrypt is slow on purpose, so a guessing flood must not starve the process: answers are remembered
// (successes for minutes, failures briefly, both by hash) and only a few checks run at once, with a bounded queue.
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { FastifyInstance } from 'fastify';
import { LRUCache } from 'lru-cache';
import { Slots } from '../cache/slots.js';
import { OciError } from '../oci/errors.js';
import { ConfigError, readConfigFile } from '../config/validate.js';
import { sendError } from './errors.js';
import { HEALTH_PATH, READY_PATH } from './health.js';
import { METRICS_PATH } from './metrics.js';

/** Cost 12 takes ~250 ms in bcryptjs; above it one check costs more than a pull's worth of CPU. */
export const MAX_BCRYPT_COST = 12;
/** bcrypt checks running at once, and waiting beyond those; more get 429 at once. */
const CONCURRENT_CHECKS = 2;
const QUEUED_CHECKS = 64;
const OPEN_PATHS = new Set([HEALTH_PATH, READY_PATH, METRICS_PATH]);

/** Reads `user:$2y$…` lines; anything but bcrypt of cost ≤ 12 is refused at start-up with its line number. */
export function loadHtpasswd(file: string): Map<string, string> {
  const users = new Map<string, string>();
  const problems: string[] = [];
  readConfigFile(file, 'an htpasswd file').split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const at = line.indexOf(':');
    const user = line.slice(0, at);
    const hash = line.slice(at + 1);
    const m = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/.exec(hash);
    if (at <= 0 || !m) {
      problems.push(`${file}:${i + 1}:1: expected user:bcrypt-hash (create it with \`htpasswd -B\`), got ${at > 0 ? `a non-bcrypt hash for ${JSON.stringify(user)}` : 'no user:hash pair'}`);
      return;
    }
    const cost = Number(m[1]);
    if (cost > MAX_BCRYPT_COST) {
      problems.push(`${file}:${i + 1}:1: expected a bcrypt cost of at most ${MAX_BCRYPT_COST}, got ${cost} for ${JSON.stringify(user)} (every check would cost seconds of CPU; \`htpasswd -B -C ${MAX_BCRYPT_COST}\`)`);
      return;
    }
    users.set(user, hash);
  });
  if (problems.length) throw new ConfigError(problems);
  if (users.size === 0) throw new ConfigError([`${file}: expected at least one user:bcrypt-hash line`]);
  return users;
}

/** Runs at most `limit` tasks at once, queues `queue` more, and refuses the rest (undefined). */
export class CheckLimiter {
  private readonly slots: Slots;
  constructor(limit: number, private readonly queue: number) {
    this.slots = new Slots(limit);
  }

  async run<T>(task: () => Promise<T>): Promise<T | undefined> {
    if (this.slots.inUse >= this.slots.size && this.slots.waiting >= this.queue) return undefined;
    const release = await this.slots.take();
    try {
      return await task();
    } finally {
      release();
    }
  }
}

type Verdict = 'ok' | 'denied' | 'busy';

export function authPlugin(opts: { htpasswd: string; realm: string }): (app: FastifyInstance) => void {
  const users = loadHtpasswd(opts.htpasswd);
  // Remembered by a hash of the credentials, never in clear.
  const verified = new LRUCache<string, true>({ max: 10_000, ttl: 10 * 60_000 });
  const refused = new LRUCache<string, true>({ max: 10_000, ttl: 30_000 });
  const limiter = new CheckLimiter(CONCURRENT_CHECKS, QUEUED_CHECKS);
  // A user who does not exist costs a real user's check (no way to tell which names exist).
  const decoy = users.values().next().value as string;
  const challenge = `Basic realm="${opts.realm.replace(/"/g, '')}"`;

  async function check(header: string | undefined): Promise<Verdict> {
    const m = /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header ?? '');
    if (!m) return 'denied';
    const credentials = m[1] as string;
    const key = createHash('sha256').update(credentials).digest('hex');
    if (verified.get(key)) return 'ok';
    if (refused.get(key)) return 'denied';
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    const known = i > 0 ? users.get(decoded.slice(0, i)) : undefined;
    const ok = await limiter.run(async () => (await bcrypt.compare(decoded.slice(i + 1), known ?? decoy)) && known !== undefined);
    if (ok === undefined) return 'busy';
    (ok ? verified : refused).set(key, true);
    return ok ? 'ok' : 'denied';
  }

  return (app) => {
    app.addHook('onRequest', async (req, reply) => {
      if (OPEN_PATHS.has(req.url.split('?', 1)[0] as string)) return undefined;
      const verdict = await check(req.headers.authorization);
      if (verdict === 'ok') return undefined;
      reply.header('docker-distribution-api-version', 'registry/2.0');
      if (verdict === 'busy') return sendError(reply, new OciError('TOOMANYREQUESTS', undefined, { headers: { 'retry-after': '1' }, message: 'too many password checks at once; retry shortly' }));
      return sendError(reply, new OciError('UNAUTHORIZED', undefined, { headers: { 'www-authenticate': challenge } }));
    });
  };
}

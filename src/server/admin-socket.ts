// The running server's admin socket: <cache.dir>/admin.sock, mode 0600 (only the user running ocimirror, or root).
// `ocimirror cache list|rm|prune` talk to it when it exists, so removal goes through this process's own index —
// which knows which blobs clients are reading right now and defers deleting those until they are done. Without a
// running server the CLI works on the stores directly.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CacheAdmin, isImageTarget, type Remover } from '../cache/cache-admin.js';
import type { CachingService } from '../cache/service.js';
import { tagId } from '../cache/tag-store.js';

export const ADMIN_SOCKET = 'admin.sock';
const MAX_BODY = 256 * 1024;
/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
const MAX_SOCKET_PATH = 107;

export interface AdminSocket { path: string; close(): Promise<void> }

/** The index decides: an entry a client is reading is deleted when the last reader is done. */
function indexRemover(service: CachingService): Remover {
  return {
    async removeTag(ref) {
      await service.stores.tags.delete(ref);
      service.index.forget('tag', tagId(ref));
    },
    remove: (kind, digest) => service.index.delete(kind, digest),
  };
}

/** Listens on the admin socket; undefined (with a warning) when it cannot, for the server runs on regardless. */
export async function startAdminSocket(cacheDir: string, service: CachingService, opts: { tagTtlMs: number; now: () => number }, log: Logger): Promise<AdminSocket | undefined> {
  const path = join(cacheDir, ADMIN_SOCKET);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    log.warn({ path }, 'cache.dir is too long a path for the admin socket; cache rm/prune will act on the stores directly');
    return undefined;
  }
  if (await answers(path)) {
    log.warn({ path }, 'another ocimirror is serving this cache directory; not opening the admin socket');
    return undefined;
  }
  await rm(path, { force: true });
  const admin = new CacheAdmin(service.stores, indexRemover(service), opts);
  const server = createServer((req, res) => void handle(admin, req, res, log));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
  await chmod(path, 0o600);
  return { path, close: () => close(server, path) };
}

async function handle(admin: CacheAdmin, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const reply = (status: number, body: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)); };
  try {
    if (req.method === 'GET' && req.url === '/cache/images') return reply(200, await admin.list());
    if (req.method !== 'POST') return reply(404, { error: `no such admin request: ${req.method} ${req.url}` });
    const body = await readJson(req);
    if (body === undefined) return reply(400, { error: 'expected a JSON object as the request body' });
    if (req.url === '/cache/rm') {
      const targets = body.images;
      if (!Array.isArray(targets) || !targets.every(isImageTarget)) return reply(400, { error: 'expected {"images":[{"registry","repo","reference"}...]}' });
      const report = await admin.remove(targets);
      log.info({ ...report }, 'cache rm');
      return reply(200, report);
    }
    if (req.url === '/cache/prune') {
      const ms = body.olderThanMs;
      if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) return reply(400, { error: 'expected {"olderThanMs": <milliseconds>}' });
      const report = await admin.prune(ms);
      log.info({ ...report, olderThanMs: ms }, 'cache prune');
      return reply(200, report);
    }
    return reply(404, { error: `no such admin request: ${req.method} ${req.url}` });
  } catch (err) {
    log.error({ err }, 'admin request failed');
    return reply(500, { error: (err as Error).message });
  }
}

/** The request's body when it is a JSON object, else undefined. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new Error('admin request body too large');
    chunks.push(c as Buffer);
  }
  let parsed: unknown;
  try { parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { return undefined; /* answered 400 by the caller */ }
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : undefined;
}

/** Whether something accepts connections on the socket (a file left by a crashed server does not). */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function close(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(path, { force: true });
}

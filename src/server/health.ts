// GET|HEAD /healthz (the process answers) and /readyz (it can do its job: config loaded, cache dir writable, every
// mirror has at least one endpoint whose circuit is closed). Outside /v2/, so no image name can collide with them.
import { randomBytes } from 'node:crypto';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

export interface ReadinessSources {
  /** The configuration file the running config came from (it is loaded once the app exists). */
  configSource: string;
  cacheDir: string;
  /** Every configured mirror with the health of its endpoints. */
  mirrors(): { registry: string; endpoints: { name: string; isDown: boolean }[] }[];
  /** More checks by name (the object store, the cluster's Redis). */
  more?: () => Promise<Record<string, Check>>;
}

/** `degraded`: working, with less than it should (still ok, so the replica stays in its Service). */
export interface Check { ok: boolean; degraded?: boolean; detail?: string }

export interface Readiness {
  ready: boolean;
  checks: {
    config: Check;
    cache: Check;
    mirrors: Record<string, Check & { endpoints: Record<string, 'up' | 'down'> }>;
    [more: string]: Check | Record<string, Check>;
  };
}

export async function readiness(src: ReadinessSources): Promise<Readiness> {
  const cache = await cacheWritable(src.cacheDir);
  const mirrors: Readiness['checks']['mirrors'] = {};
  for (const m of src.mirrors()) {
    const up = m.endpoints.filter((e) => !e.isDown).length;
    mirrors[m.registry] = {
      ok: up > 0,
      ...(up > 0 ? {} : { detail: 'every endpoint is marked down' }),
      endpoints: Object.fromEntries(m.endpoints.map((e) => [e.name, e.isDown ? 'down' : 'up'])),
    };
  }
  const config = { ok: true, detail: src.configSource };
  const more = (await src.more?.()) ?? {};
  const ready = config.ok && cache.ok && Object.values(mirrors).every((m) => m.ok) && Object.values(more).every((c) => c.ok);
  return { ready, checks: { config, cache, mirrors, ...more } };
}

/** Writes and removes a probe file: catches a read-only mount or a full disk, which a permission check does not. */
async function cacheWritable(dir: string): Promise<Check> {
  const probe = join(dir, 'tmp', `readyz-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(join(dir, 'tmp'), { recursive: true });
    await writeFile(probe, 'ok');
    await unlink(probe);
    return { ok: true, detail: dir };
  } catch (e) {
    await unlink(probe).catch(() => undefined);
    return { ok: false, detail: `${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
}

export function healthPlugin(src: ReadinessSources): (app: FastifyInstance) => void {
  return (app) => {
    app.route({
      method: ['GET', 'HEAD'],
      url: HEALTH_PATH,
      handler: async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }),
    });
    app.route({
      method: ['GET', 'HEAD'],
      url: READY_PATH,
      handler: async (_req, reply) => {
        const r = await readiness(src);
        return reply.code(r.ready ? 200 : 503).header('cache-control', 'no-store').send({ status: r.ready ? 'ready' : 'not ready', ...r.checks });
      },
    });
  };
}

// ocimirror cache list [--format table|json] | rm IMAGE... | prune --older-than 30d   [--config FILE]
// Thin: through the running server's admin socket when there is one (its index knows what clients are reading),
// else on the stores directly.
import { CacheAdmin, storeRemover, type CachedImage, type ImageTarget, type RemovalReport } from '../cache/cache-admin.js';
import { openCacheStores } from '../cache/open-stores.js';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { formatBytes, type Output } from '../warm/progress.js';
import { AdminClient } from './admin-client.js';
import { cliLogger, DEFAULT_CONFIG, loadCacheConfig } from './cache-config.js';
import { parseCommandArgs, UsageError } from './usage.js';
import { readImageRefs } from './warm.js';

const USAGE = `usage: ocimirror cache <list | rm IMAGE... | prune --older-than AGE> [options]

  list                 every cached tag: digest, platforms, size, last pulled, and whether it is fresh, stale
                       (revalidated upstream at the next pull) or imported
  rm IMAGE...          remove images (tags, or repo@digest); blobs another cached image uses stay
  prune --older-than AGE   remove what no client pulled for AGE (30d, 12h, 90m)

options:
  -c, --config FILE      ocimirror's configuration (default ./${DEFAULT_CONFIG}): where the cache is
      --format table|json   list only (default table)

With ocimirror running on the same cache, these go through its admin socket (<cache.dir>/admin.sock), so a blob
a node is downloading right now is deleted only when that download ends.`;

export interface CacheIo { stdout: Output; stderr: Output }

export async function cacheCommand(argv: string[], io: CacheIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, format: { type: 'string' }, 'older-than': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  const [action, ...rest] = positionals;
  if (values.help || !action) { io.stdout.write(`${USAGE}\n`); return values.help ? 0 : 2; }
  if (!['list', 'rm', 'prune'].includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)}\n\n${USAGE}`);
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'json') throw new UsageError(`--format: expected table or json, got ${JSON.stringify(format)}`);
  const targets: ImageTarget[] = action === 'rm' ? readImageRefs(rest, [], USAGE).map((r) => ({ registry: r.registry, repo: r.repo, reference: r.reference })) : [];
  const olderThanMs = action === 'prune' ? age(values['older-than']) : 0;
  if (action !== 'rm' && rest.length) throw new UsageError(`${action} takes no IMAGE arguments`);
  const config = loadCacheConfig(values.config);

  const { admin, how, close } = await openAdmin(config);
  try {
    if (action === 'list') {
      const images = await admin.list();
      io.stdout.write(format === 'json' ? `${JSON.stringify(images, null, 2)}\n` : table(images, Date.now()));
      return 0;
    }
    const report = action === 'rm' ? await admin.remove(targets) : await admin.prune(olderThanMs);
    io.stdout.write(describe(report, how));
    for (const n of report.notFound) io.stderr.write(`not cached: ${n}\n`);
    return report.notFound.length ? 1 : 0;
  } finally {
    await close();
  }
}

/** The running server's admin socket when it answers, else a CacheAdmin on the stores themselves. */
async function openAdmin(config: Config): Promise<{ admin: Pick<CacheAdmin, 'list' | 'remove' | 'prune'>; how: string; close(): Promise<void> }> {
  const server = await AdminClient.connect(config.cache.dir);
  if (server) return { admin: server, how: 'through the running server', close: () => server.close() };
  const opened = await openCacheStores(config, cliLogger(config));
  const admin = new CacheAdmin(opened.stores, storeRemover(opened.stores), { tagTtlMs: config.cache.tagTtlMs, now: Date.now });
  return { admin, how: 'on the stores (no server running)', close: async () => opened.close() };
}

function age(text: string | undefined): number {
  if (!text) throw new UsageError('prune needs --older-than AGE (e.g. 30d)');
  const ms = parseDuration(text.trim());
  if (ms === undefined) throw new UsageError(`--older-than: expected an age like 30d, 12h or 90m, got ${JSON.stringify(text)}`);
  return ms;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : s < 172_800 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86_400)}d ago`;
}

function table(images: CachedImage[], now: number): string {
  const rows = [['REGISTRY', 'REPOSITORY', 'TAG', 'DIGEST', 'PLATFORMS', 'SIZE', 'LAST PULLED', 'STATE']];
  for (const i of images) {
    const state = i.missingBlobs ? `${i.state}, ${i.missingBlobs} blob(s) not cached` : i.state;
    rows.push([i.registry, i.repository, i.tag, i.digest.slice(0, 19), i.platforms.join(',') || '-', formatBytes(i.size), ago(now - i.lastPulled), state]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return `${rows.map((r) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]!))).join('  ')).join('\n')}\n${images.length} image(s)\n`;
}

function describe(r: RemovalReport, how: string): string {
  const lines = [`removed ${r.tags.length} tag(s), ${r.manifests} manifest(s), ${r.blobs} blob(s), ${formatBytes(r.bytes)} (${how})`];
  for (const t of r.tags) lines.push(`  ${t}`);
  if (r.shared) lines.push(`kept ${r.shared} blob(s) that other cached images use`);
  if (r.deferred) lines.push(`${r.deferred} of them are being read now: deleted when those reads end`);
  return `${lines.join('\n')}\n`;
}

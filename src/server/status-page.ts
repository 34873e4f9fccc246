// GET / and /status: one server-rendered HTML page that redraws itself every few seconds from GET /status.json.
// Also records the recent pulls it lists (an onResponse hook on manifest requests).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDigest } from '../oci/names.js';
import { statusSnapshot, type PullRecord, type RecentPulls, type StatusSource } from './status-data.js';
import { renderStatus } from './status-render.js';
import './context.js';

export const STATUS_PATHS = ['/', '/status'];
export const STATUS_JSON_PATH = '/status.json';
const REFRESH_MS = 2000;

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b6470;--bg:#f6f7f9;--card:#fff;--line:#d9dde3;--up:#1a7f37;--down:#cf222e;--bar:#2f6feb}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa3ad;--bg:#0f1216;--card:#181c22;--line:#2b313a;--bar:#4c8dff}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:.6em;padding:.8em 1em;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:1.15em;margin:0}header span{color:var(--muted);font-size:.85em}
main{max-width:60em;margin:0 auto;padding:.5em 1em 2em}h2{font-size:1em;margin:1.4em 0 .5em}h3{font-size:1em;margin:0 0 .4em}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.7em .8em;margin:.5em 0}
small{color:var(--muted);margin-left:.3em}code{font:.88em ui-monospace,monospace;overflow-wrap:anywhere}
ol{margin:0;padding-left:1.4em}li{margin:.35em 0}.error{color:var(--down);font-size:.85em;overflow-wrap:anywhere}
.state,.cache{display:inline-block;min-width:3.2em;text-align:center;border-radius:1em;padding:0 .5em;font-size:.8em;color:#fff;background:var(--muted)}
.state.up,.cache.hit{background:var(--up)}.state.down,.cache.error{background:var(--down)}.cache.miss,.cache.joined{background:var(--bar)}
.bar{height:.7em;border-radius:.35em;background:var(--line);overflow:hidden;margin:.4em 0}.bar>span{display:block;height:100%;background:var(--bar)}
dl{display:flex;flex-wrap:wrap;gap:.4em 1.6em;margin:.4em 0 0}dt{color:var(--muted);font-size:.85em}dd{margin:0}
.asof,.none{color:var(--muted);font-size:.85em}.pulls{padding-left:0;list-style:none}.pulls li{border-bottom:1px solid var(--line);padding:.25em 0}
body.stale main{opacity:.55}`;

/**
 * renderStatus as browser source. esbuild (tsx, vitest) wraps named inner functions in __name(): a no-op stands in
 * for it, so the text runs the same whichever compiler built this module.
 */
export const RENDERER_SOURCE = `const __name = (f) => f;\nconst renderStatus = ${renderStatus.toString()};`;

// Relative URL: the page works under / and /status, and behind a reverse proxy that adds a path prefix.
const SCRIPT = `${RENDERER_SOURCE}
async function refresh() {
  try {
    const res = await fetch('status.json', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    document.getElementById('status').innerHTML = renderStatus(await res.json());
    document.body.classList.remove('stale');
  } catch (e) {
    document.body.classList.add('stale');
  }
  setTimeout(refresh, ${REFRESH_MS});
}
setTimeout(refresh, ${REFRESH_MS});`;

export function statusPage(body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`
    + `<title>ocimirror status</title><link rel="icon" href="data:,"><style>${STYLE}</style></head><body><header><h1>ocimirror</h1><span>status · refreshes every ${REFRESH_MS / 1000} s</span></header>`
    + `<main id="status">${body}</main><script>${SCRIPT}</script></body></html>`;
}

/** A pull is the first manifest request of one: a HEAD (containerd resolves every reference so) or a GET by tag. */
export function pullOf(req: FastifyRequest, reply: FastifyReply): PullRecord | undefined {
  const ctx = req.ctx;
  if (!ctx?.registry || !ctx.repo) return undefined;
  const ref = /\/manifests\/([^/?]+)(?:\?|$)/.exec(req.url)?.[1];
  if (!ref || (req.method !== 'HEAD' && isDigest(ref))) return undefined;
  return {
    at: Date.now(),
    image: `${ctx.registry}/${ctx.repo}${isDigest(ref) ? '@' : ':'}${ref}`,
    client: req.ip,
    cache: ctx.cache ?? (reply.statusCode >= 400 ? 'error' : 'miss'),
    status: reply.statusCode,
  };
}

export function statusPlugin(src: StatusSource, pulls: RecentPulls): (app: FastifyInstance) => void {
  return (app) => {
    app.addHook('onResponse', async (req, reply) => {
      const pull = pullOf(req, reply);
      if (pull) pulls.add(pull);
    });
    app.get(STATUS_JSON_PATH, async (_req, reply) => reply.header('cache-control', 'no-store').send(await statusSnapshot(src)));
    for (const url of STATUS_PATHS) {
      app.get(url, async (_req, reply) => reply
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(statusPage(renderStatus(await statusSnapshot(src)))));
    }
  };
}

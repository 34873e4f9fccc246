// The status page's body, from a StatusSnapshot. One self-contained function (no imports, no outer names): the
// server renders the first view with it, and the page's script is its own source text (renderStatus.toString()),
// so the refresh from /status.json draws exactly what the server drew, with no front-end build.
import type { StatusSnapshot } from './status-data.js';

export function renderStatus(s: StatusSnapshot): string {
  const esc = (v: unknown): string => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const bytes = (n: number): string => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  };
  const pct = (r: number): string => `${(r * 100).toFixed(r > 0 && r < 0.1 ? 1 : 0)}%`;
  const span = (sec: number): string => (sec < 60 ? `${sec} s` : sec < 3600 ? `${Math.floor(sec / 60)} min` : `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`);
  const when = (t: number): string => {
    const d = (t - s.now) / 1000;
    return d > 0 ? `in ${span(Math.ceil(d))}` : d > -1 ? 'now' : `${span(Math.floor(-d))} ago`;
  };
  const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
  const bar = (value: number, max: number, label: string): string => {
    const width = max > 0 ? Math.min(100, (value / max) * 100) : 0;
    return `<div class="bar" role="progressbar" aria-label="${esc(label)}" aria-valuemin="0" aria-valuemax="${max}" aria-valuenow="${value}">`
      + `<span style="width:${width.toFixed(1)}%"></span></div>`;
  };

  const registries = s.registries.map((r) => `<article class="card registry" data-registry="${esc(r.registry)}">`
    + `<h3>${esc(r.registry)} <small>${plural(r.requests, 'request')} · ${r.failures} failed</small></h3><ol class="endpoints">`
    + r.endpoints.map((e) => `<li class="endpoint" data-endpoint="${esc(e.name)}" data-state="${e.state}">`
      + `<span class="state ${e.state}">${e.state}</span> <code>${esc(e.name)}</code>`
      + `<small>${plural(e.requests, 'request')} · ${plural(e.failures, 'failure')}`
      + `${e.nextProbeAt !== undefined ? ` · next probe ${e.nextProbeAt > s.now ? when(e.nextProbeAt) : 'due'}` : ''}</small>`
      + `${e.lastError ? `<div class="error">last error: ${esc(e.lastError)}</div>` : ''}</li>`).join('')
    + '</ol></article>').join('');

  const c = s.cache;
  const cache = `<div class="card">${bar(c.bytes, c.maxSize, 'cache size')}<p>${bytes(c.bytes)} of ${bytes(c.maxSize)}`
    + `${c.maxSize > 0 ? ` (${pct(c.bytes / c.maxSize)})` : ''} · ${plural(c.entries, 'entry', 'entries')}</p>`
    + `<dl><div><dt>hit ratio</dt><dd>${c.hitRatio === null ? '–' : pct(c.hitRatio)} <small>${c.hits} hits, ${c.misses} misses</small></dd></div>`
    + `<div><dt>served from cache</dt><dd>${bytes(c.bytesFromCache)}</dd></div>`
    + `<div><dt>served from upstream</dt><dd>${bytes(c.bytesFromUpstream)}</dd></div></dl></div>`;

  const fills = s.fills.length === 0 ? '<p class="none">No fills running.</p>' : s.fills.map((f) => `<div class="card fill" data-digest="${esc(f.digest)}">`
    + `<div><code>${esc(f.repo)}</code> <code class="digest">${esc(f.digest.slice(0, 19))}…</code></div>`
    + bar(f.written, f.size ?? 0, `fill ${f.digest}`)
    + `<small>${bytes(f.written)}${f.size !== undefined ? ` of ${bytes(f.size)}` : ''} · ${bytes(f.bytesPerSecond)}/s · `
    + `${plural(f.clients, 'client')} · started ${when(f.startedAt)}${f.endpoint ? ` · from ${esc(f.endpoint)}` : ''}</small></div>`).join('');

  const limits = s.rateLimits.length === 0 ? '' : `<section id="rate-limits"><h2>Docker Hub rate limits</h2>`
    + s.rateLimits.map((l) => `<div class="card limit" data-endpoint="${esc(l.endpoint)}"><code>${esc(l.endpoint)}</code>`
      + (l.remaining !== undefined && l.limit !== undefined ? bar(l.remaining, l.limit, `rate limit ${l.endpoint}`) : '')
      + `<small>${l.remaining === undefined ? 'no count announced' : `${l.remaining}${l.limit !== undefined ? ` of ${l.limit}` : ''} requests left`}`
      + `${l.resetAt !== undefined ? ` · resets ${when(l.resetAt)}` : ''}</small>`
      + `${l.retryAfterUntil !== undefined ? `<div class="error">429 Too Many Requests: asked again ${when(l.retryAfterUntil)}</div>` : ''}</div>`).join('')
    + '</section>';

  const pulls = s.pulls.length === 0 ? '<p class="none">No pulls yet.</p>' : `<ol class="pulls">${s.pulls.map((p) => '<li>'
    + `<span class="cache ${esc(p.cache)}">${esc(p.cache)}</span> <code>${esc(p.image)}</code>`
    + `<small>${esc(p.client)} · ${when(p.at)}${p.status >= 400 ? ` · HTTP ${p.status}` : ''}</small></li>`).join('')}</ol>`;

  return `<p class="asof">as of ${new Date(s.now).toISOString().slice(11, 19)} UTC</p>`
    + `<section id="registries"><h2>Registries</h2>${registries}</section>`
    + `<section id="cache"><h2>Cache</h2>${cache}</section>`
    + `<section id="fills"><h2>Fills in progress (${s.fills.length})</h2>${fills}</section>`
    + limits
    + `<section id="pulls"><h2>Last ${plural(s.pulls.length, 'pull')}</h2>${pulls}</section>`;
}

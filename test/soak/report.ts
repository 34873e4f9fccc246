// The soak's table: what happened, what the goals were, whether each was met. Returns the exit code (1: a goal missed).
import type { Tally } from './clients.js';

export interface SoakResult {
  seconds: number;
  counts: Record<string, number>;
  tallies: { tag: Tally; big: Tally; cold: Tally };
  misbehaved: { stalls: number; drops: number };
  coldPulled: number;
  coldTotal: number;
  health: { latencies: number[]; failures: number };
  samples: { rss: number; fds: number }[];
  before: { rss: number; fds: number };
  after: { rss: number; fds: number; tmp: number };
  /** The proxy's own event-loop delay over the run, and how busy it and the machine were. */
  loop: { p99: number; max: number };
  load: { proxyCpu: number; machine: number; cores: number };
  proxyWarnings: string[];
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const ms = (n: number) => `${n.toFixed(1)} ms`;
const mib = (n: number) => `${n.toFixed(0)} MiB`;

export function printReport(r: SoakResult): number {
  const all = [r.tallies.tag, r.tallies.big, r.tallies.cold];
  const sum = (f: (t: Tally) => number) => all.reduce((a, t) => a + f(t), 0);
  const rssMax = Math.max(r.before.rss, ...r.samples.map((s) => s.rss));
  const fdMax = Math.max(r.before.fds, ...r.samples.map((s) => s.fds));
  const p99 = percentile(r.health.latencies, 99);
  const bytes = sum((t) => t.bytes);
  const rows: [string, string, string, boolean | undefined][] = [
    ['clients', `${Object.entries(r.counts).map(([k, v]) => `${v} ${k}`).join(', ')}, 1 /healthz`, '≥ 300 concurrent', Object.values(r.counts).reduce((a, b) => a + b, 0) + 1 >= 300],
    ['requests (well-behaved)', `${sum((t) => t.requests)} (tag ${r.tallies.tag.requests}, big ${r.tallies.big.requests}, cold ${r.tallies.cold.requests})`, '', undefined],
    ['5xx (well-behaved)', String(sum((t) => t.errors5xx)), '0', sum((t) => t.errors5xx) === 0],
    ['connection errors (well-behaved)', String(sum((t) => t.connectionErrors)), '0', sum((t) => t.connectionErrors) === 0],
    ['other non-2xx (well-behaved)', String(sum((t) => t.other)), '', undefined],
    ['bytes to well-behaved clients', `${(bytes / 2 ** 30).toFixed(2)} GiB (${(bytes / 2 ** 20 / r.seconds).toFixed(0)} MiB/s)`, '', undefined],
    ['stalled / dropped requests', `${r.misbehaved.stalls} / ${r.misbehaved.drops}`, '', undefined],
    ['cold pulls', `${r.coldPulled} of ${r.coldTotal}`, '', undefined],
    ['proxy RSS: before / max / after', `${mib(r.before.rss)} / ${mib(rssMax)} / ${mib(r.after.rss)}`, 'max ≤ 300 MiB', rssMax <= 300],
    ['proxy open fds: before / max / after', `${r.before.fds} / ${fdMax} / ${r.after.fds}`, 'after ≤ before', r.after.fds <= r.before.fds],
    ['temp files left in cache/tmp', String(r.after.tmp), '0', r.after.tmp === 0],
    ['/healthz p50 / p99 / max', `${ms(percentile(r.health.latencies, 50))} / ${ms(p99)} / ${ms(Math.max(...r.health.latencies))} (${r.health.latencies.length} probes)`, 'p99 < 100 ms', p99 < 100],
    ['/healthz failures', String(r.health.failures), '0', r.health.failures === 0],
    ['proxy event-loop delay p99 / max', `${ms(r.loop.p99)} / ${ms(r.loop.max)}`, '', undefined],
    ['proxy CPU / machine load (1 min)', `${(r.load.proxyCpu * 100).toFixed(0)} % of a core / ${r.load.machine.toFixed(1)} on ${r.load.cores} cores`, '', undefined],
    ['proxy warnings/errors logged', String(r.proxyWarnings.length), '', undefined],
  ];
  const width = [Math.max(...rows.map((x) => x[0].length)), Math.max(...rows.map((x) => x[1].length)), Math.max(...rows.map((x) => x[2].length))];
  const line = (c: string[]) => `| ${c.map((v, i) => v.padEnd(width[i] ?? 4)).join(' | ')} |`;
  const out = [`\nocimirror soak: ${r.seconds} s`, line(['measure', 'value', 'goal', 'met']), `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|------|`];
  for (const [name, value, goal, ok] of rows) out.push(line([name, value, goal, ok === undefined ? '' : ok ? 'yes' : 'NO']));
  const first = all.map((t) => t.firstError).find(Boolean);
  if (first) out.push(`first well-behaved failure: ${first}`);
  for (const w of r.proxyWarnings.slice(0, 5)) out.push(`proxy: ${w.slice(0, 300)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return rows.every(([, , , ok]) => ok !== false) ? 0 : 1;
}

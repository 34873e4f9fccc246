// The benchmark's table (issue 9's goals beside the figures) and the raw figures behind its medians.
import type { Options } from './blob-throughput.js';
import { table, fixed, mbps, megabytes, secs, times, verdict, type TableRow } from './report.js';
import type { Results, ServerKey } from './results.js';

export interface Extras { rounds: number; perClient: number; rssApplies: boolean; rssWallMs?: number; rssHwm?: number }

const SERVERS: ServerKey[] = ['ocimirror', 'distribution', 'node'];

export function summary(r: Results, opts: Options, extras: Extras): string[] {
  const cold = (k: ServerKey) => r.mbps('cold', k);
  const first = (k: ServerKey) => r.mbps('cold-first', k);
  const warm = (k: ServerKey) => r.mbps('warm', k);
  const fanGets = r.all('fan', 'ocimirror', 'gets');
  const cells = (f: (k: ServerKey) => string, keys = SERVERS) => {
    const cell = (k: ServerKey) => (keys.includes(k) ? f(k) : '');
    return { ocimirror: cell('ocimirror'), distribution: cell('distribution'), node: cell('node') };
  };
  const both = ['ocimirror', 'distribution'] as ServerKey[];
  const rps = (kase: string) => cells((k) => `${fixed(r.median(kase, k, 'rps'))} req/s`, both);
  /** A Node ceiling's row: fresh / running process, in the node column and against Distribution alike. */
  const ceiling = (name: string, key: ServerKey, goal: string): TableRow => ({
    name, ...cells(() => `${mbps(first(key))} / ${mbps(cold(key))}`, ['node']), goal, result: '',
    ratio: `${times(first(key) / first('distribution'))} / ${times(cold(key) / cold('distribution'))} Distribution`,
  });
  const rssHwm = extras.rssHwm ?? NaN;
  const n = opts.clients;

  const rows: TableRow[] = [
    {
      name: 'cold, 1 client, fresh process (Node: forwarder)', ...cells((k) => mbps(first(k))),
      goal: '>= 1.2x Distribution, >= 0.85x Node',
      ratio: `${times(first('ocimirror') / first('distribution'))}, ${times(first('ocimirror') / first('node'))}`,
      result: verdict(first('ocimirror') >= 1.2 * first('distribution'), first('ocimirror') >= 0.85 * first('node')),
    },
    {
      name: 'cold, 1 client, running process (Node: forwarder)', ...cells((k) => mbps(cold(k))),
      goal: '>= 1.2x Distribution, >= 0.85x Node',
      ratio: `${times(cold('ocimirror') / cold('distribution'))}, ${times(cold('ocimirror') / cold('node'))}`,
      result: verdict(cold('ocimirror') >= 1.2 * cold('distribution'), cold('ocimirror') >= 0.85 * cold('node')),
    },
    ceiling('cold, 1 client, Node bare pipe (no hash, no file)', 'pipe', '(ceiling of a Node HTTP cold path)'),
    ceiling('cold, 1 client, Node TCP relay to the upstream', 'relay', '(ceiling of Node forwarding)'),
    {
      name: 'warm, 1 client (Node: static file)', ...cells((k) => mbps(warm(k))),
      goal: '>= 0.95x Node, >= 0.8x Distribution',
      ratio: `${times(warm('ocimirror') / warm('node'))}, ${times(warm('ocimirror') / warm('distribution'))}`,
      result: verdict(warm('ocimirror') >= 0.95 * warm('node'), warm('ocimirror') >= 0.8 * warm('distribution')),
    },
    {
      name: `${n} concurrent cold clients, wall`, ...cells((k) => secs(r.median('fan', k, 'ms')), both),
      goal: '<= 0.8x Distribution', ratio: times(r.median('fan', 'ocimirror', 'ms') / r.median('fan', 'distribution', 'ms')),
      result: verdict(r.median('fan', 'ocimirror', 'ms') <= 0.8 * r.median('fan', 'distribution', 'ms')),
    },
    {
      name: `${n} concurrent cold clients, upstream GETs`, ...cells((k) => r.all('fan', k, 'gets').join('/'), both),
      goal: 'ocimirror exactly 1 (every run)', ratio: '', result: verdict(fanGets.length > 0 && fanGets.every((g) => g === 1)),
    },
    {
      name: 'CPU s per GB served, cold, fresh process', ...cells((k) => fixed(r.cpuPerGb('cold-first', k), 2)),
      goal: 'ocimirror <= Distribution', ratio: times(r.cpuPerGb('cold-first', 'ocimirror') / r.cpuPerGb('cold-first', 'distribution')),
      result: verdict(r.cpuPerGb('cold-first', 'ocimirror') <= r.cpuPerGb('cold-first', 'distribution')),
    },
    {
      name: 'CPU s per GB served, cold, running process', ...cells((k) => fixed(r.cpuPerGb('cold', k), 2)),
      goal: 'ocimirror <= Distribution', ratio: times(r.cpuPerGb('cold', 'ocimirror') / r.cpuPerGb('cold', 'distribution')),
      result: verdict(r.cpuPerGb('cold', 'ocimirror') <= r.cpuPerGb('cold', 'distribution')),
    },
    {
      name: 'CPU s per GB served, warm', ...cells((k) => fixed(r.cpuPerGb('warm', k), 2)),
      goal: '(no goal)', ratio: times(r.cpuPerGb('warm', 'ocimirror') / r.cpuPerGb('warm', 'distribution')), result: '',
    },
    {
      name: `CPU s per GB served, ${n} concurrent cold`, ...cells((k) => fixed(r.cpuPerGb('fan', k), 2), both),
      goal: '(no goal)', ratio: times(r.cpuPerGb('fan', 'ocimirror') / r.cpuPerGb('fan', 'distribution')), result: '',
    },
    {
      name: `peak RSS, ${n} clients x ${megabytes(extras.perClient)}`, ...cells(() => megabytes(rssHwm), ['ocimirror']),
      goal: '<= 200 MB', ratio: '', result: extras.rssApplies ? verdict(rssHwm <= 200e6) : 'n/a (< 1 GiB per client)',
    },
    {
      name: 'tag HEAD within TTL, ab -k -c 50', ...rps('tag-head'),
      goal: '>= 7,000 req/s', ratio: '', result: verdict(r.median('tag-head', 'ocimirror', 'rps') >= 7000),
    },
    {
      name: 'small blob GET, ab -k -c 50', ...rps('small-get'),
      goal: '>= 3,000 req/s', ratio: '', result: verdict(r.median('small-get', 'ocimirror', 'rps') >= 3000),
    },
  ];
  if (r.has('link-one', 'ocimirror')) {
    const one = r.median('link-one', 'ocimirror', 'ms');
    const fan = r.median('link-fan', 'ocimirror', 'ms');
    const linkGets = r.all('link-fan', 'ocimirror', 'gets');
    rows.push(
      { name: `cold, 1 client over a ${opts.linkMiBps} MiB/s uplink, wall`, ...cells((k) => secs(r.median('link-one', k, 'ms')), both), goal: '(reference)', ratio: '', result: '' },
      {
        name: `${n} cold clients over that uplink, wall`, ...cells((k) => `${secs(r.median('link-fan', k, 'ms'))} (${r.all('link-fan', k, 'gets').join('/')} GETs)`, both),
        goal: '1 upstream GET, <= 1.3x 1 client', ratio: times(fan / one), result: verdict(linkGets.every((g) => g === 1), fan <= 1.3 * one),
      },
    );
  }

  const raw = (kase: string, k: ServerKey, figure: 'ms' | 'cpu' | 'rps') => r.all(kase, k, figure).map((v) => (figure === 'cpu' ? v.toFixed(2) : v.toFixed(0))).join(' ');
  const rawLine = (label: string, kase: string, figure: 'ms' | 'cpu' | 'rps', keys = SERVERS) =>
    `  ${label.padEnd(24)}${keys.filter((k) => r.has(kase, k)).map((k) => `${k} ${raw(kase, k, figure)}`).join('; ')}`;
  return [
    table(rows),
    '',
    'Goals are issue 9\'s; the single-client ratios compare throughput (MB/s), the wall-time ratio is ocimirror / Distribution.',
    'Cold, fresh process: each process\'s very first request (another layer). Running process: the measured layer right after it, same process.',
    'Node bare pipe and TCP relay rows: fresh / running, the node column and the ratio alike.',
    `Distribution proxy's upstream GETs, single cold client: ${r.all('cold', 'distribution', 'gets').join('/')} (ocimirror: ${r.all('cold', 'ocimirror', 'gets').join('/')}).`,
    `Peak RSS row: ${n} clients each read the layer ${extras.rounds} times in a row (the first cold, then warm) in ${secs(extras.rssWallMs ?? NaN)}; VmHWM of the ocimirror process.`,
    '',
    'raw figures, in run order (ms of wall time; CPU s; req/s):',
    rawLine('cold ms, fresh', 'cold-first', 'ms', [...SERVERS, 'pipe', 'relay']),
    rawLine('cold ms, running', 'cold', 'ms', [...SERVERS, 'pipe', 'relay']),
    rawLine('warm ms', 'warm', 'ms'),
    rawLine(`${n} cold ms`, 'fan', 'ms', ['ocimirror', 'distribution']),
    rawLine('cold CPU s, fresh', 'cold-first', 'cpu', [...SERVERS, 'pipe', 'relay']),
    rawLine('cold CPU s, running', 'cold', 'cpu', [...SERVERS, 'pipe', 'relay']),
    rawLine('warm CPU s', 'warm', 'cpu'),
    rawLine(`${n} cold CPU s`, 'fan', 'cpu', ['ocimirror', 'distribution']),
    rawLine('tag HEAD req/s', 'tag-head', 'rps', ['ocimirror', 'distribution']),
    rawLine('small GET req/s', 'small-get', 'rps', ['ocimirror', 'distribution']),
  ];
}

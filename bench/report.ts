// Plain-text output of the benchmark: one table, the compared servers side by side, each case beside its goal.
export interface TableRow {
  name: string;
  ocimirror: string;
  distribution: string;
  node: string;
  goal: string;
  ratio: string;
  result: string;
}

const HEADER: TableRow = {
  name: 'case', ocimirror: 'ocimirror', distribution: 'Distribution proxy', node: 'plain Node', goal: 'goal', ratio: 'measured', result: 'result',
};
const COLUMNS = Object.keys(HEADER) as (keyof TableRow)[];
const NUMERIC = new Set<keyof TableRow>(['ocimirror', 'distribution', 'node']);

export function table(rows: TableRow[]): string {
  const widths = COLUMNS.map((c) => Math.max(...[HEADER, ...rows].map((r) => r[c].length)));
  const line = (r: TableRow) => COLUMNS.map((c, i) => (NUMERIC.has(c) ? r[c].padStart(widths[i]!) : r[c].padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const mbPerSecond = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
export const verdict = (...met: boolean[]) => met.map((m) => (m ? 'met' : 'MISSED')).join(', ');
export const times = (x: number) => `${Number.isFinite(x) ? x.toFixed(2) : '-'}x`;
export const fixed = (x: number, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');
export const mbps = (x: number) => (Number.isFinite(x) ? `${fixed(x)} MB/s` : '-');
export const secs = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '-');
export const megabytes = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1e6).toFixed(0)} MB` : '-');

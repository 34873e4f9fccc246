// Plain-text table for the benchmark: one row per measurement, each figure beside its goal.
export const MB = 1_000_000;

export interface Row {
  name: string;
  wallMs?: number;
  /** Bytes delivered to clients during wallMs (all clients together). */
  bytes?: number;
  upstreamGets?: number | string;
  /** Peak resident memory of the mirror process (VmHWM), bytes. */
  peakRss?: number;
  /** CPU seconds (user + system) the mirror process used during the measurement. */
  cpuSeconds?: number;
  /** CPU seconds of the benchmark process itself: its clients receiving and hashing. */
  clientCpuSeconds?: number;
  goal?: string;
  result?: Verdict | string;
}

export type Verdict = 'PASS' | 'MISS';
export const verdict = (ok: boolean): Verdict => (ok ? 'PASS' : 'MISS');

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const mbPerSecond = (bytes: number, ms: number) => bytes / MB / (ms / 1000);
export const megabytes = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function table(rows: Row[]): string {
  const header = ['measurement', 'wall', 'MB/s', 'upstream blob GETs', 'mirror CPU', 'client CPU', 'mirror peak RSS', 'goal', 'result'];
  const cells = rows.map((r) => [
    r.name,
    r.wallMs === undefined ? '-' : seconds(r.wallMs),
    r.wallMs === undefined || r.bytes === undefined ? '-' : mbPerSecond(r.bytes, r.wallMs).toFixed(0),
    r.upstreamGets === undefined ? '-' : String(r.upstreamGets),
    r.cpuSeconds === undefined ? '-' : `${r.cpuSeconds.toFixed(2)} s`,
    r.clientCpuSeconds === undefined ? '-' : `${r.clientCpuSeconds.toFixed(2)} s`,
    r.peakRss === undefined ? '-' : megabytes(r.peakRss),
    r.goal ?? '',
    r.result ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === 1 || i === 2 || i === 4 || i === 5 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

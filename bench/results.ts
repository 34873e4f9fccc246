// The figures a benchmark run collects, keyed by case and server, and the medians the table shows.
import type { Distribution } from '../test/helpers/distribution.js';
import { median } from './report.js';

/** `pipe`, `relay`: plain Node forwarding without hash or file, and bare TCP: cold ceilings (the `node` column). */
export type ServerKey = 'ocimirror' | 'distribution' | 'node' | 'pipe' | 'relay';
export type Figure = 'ms' | 'cpu' | 'gets' | 'rps' | 'bytes';


export class Results {
  private readonly data = new Map<string, number[]>();

  add(kase: string, server: ServerKey, figure: Figure, value: number): void {
    const key = `${kase}/${server}/${figure}`;
    const list = this.data.get(key) ?? [];
    list.push(value);
    this.data.set(key, list);
  }

  all(kase: string, server: ServerKey, figure: Figure): number[] {
    return this.data.get(`${kase}/${server}/${figure}`) ?? [];
  }

  median(kase: string, server: ServerKey, figure: Figure): number {
    return median(this.all(kase, server, figure));
  }

  has(kase: string, server: ServerKey): boolean {
    return this.all(kase, server, 'ms').length > 0 || this.all(kase, server, 'rps').length > 0;
  }

  /** Median throughput in MB/s: bytes per transfer over the median wall time. */
  mbps(kase: string, server: ServerKey): number {
    return this.median(kase, server, 'bytes') / 1e6 / (this.median(kase, server, 'ms') / 1000);
  }

  /** CPU seconds per GB delivered, the median over transfers. */
  cpuPerGb(kase: string, server: ServerKey): number {
    const cpu = this.all(kase, server, 'cpu');
    const bytes = this.all(kase, server, 'bytes');
    return median(cpu.map((c, i) => c / ((bytes[i] ?? NaN) / 1e9)));
  }
}

const BLOB_GET = /\/blobs\/sha256:/;

/** Blob GETs the upstream Distribution answered since the last call (its access log is asynchronous: flush first). */
export async function upstreamBlobGets(upstream: Distribution): Promise<number> {
  await upstream.flushLog();
  const n = upstream.count('GET', BLOB_GET);
  upstream.resetLog();
  return n;
}

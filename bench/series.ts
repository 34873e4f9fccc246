// Repeated measurements of one benchmark row, and how each is taken: wall time, bytes delivered, CPU of the mirror
// and of the benchmark's own clients, and the blob GETs the upstream Distribution saw meanwhile.
import type { Distribution } from '../test/helpers/distribution.js';
import type { ProxyProcess } from './proxy-process.js';
import { median, type Row } from './report.js';

const BLOB_GET = /\/blobs\/sha256:/;

/** upstreamGets and mirrorCpu only for transfers through the mirror (a direct GET is itself the upstream GET). */
export interface Sample { wallMs: number; bytes: number; clientCpu: number; upstreamGets?: number; mirrorCpu?: number }

/** Blob GETs Distribution answered since the last call (its access log is asynchronous: flush first). */
export async function upstreamBlobGets(upstream: Distribution): Promise<number> {
  await upstream.flushLog();
  const n = upstream.count('GET', BLOB_GET);
  upstream.resetLog();
  return n;
}

/** Runs `transfer` (resolving to its wall time in ms) and records what it cost; `mirror` is undefined for direct GETs. */
export async function measure(upstream: Distribution, mirror: ProxyProcess | undefined, bytes: number, transfer: () => Promise<number>): Promise<Sample> {
  await upstreamBlobGets(upstream);
  const clientBefore = process.cpuUsage();
  const mirrorBefore = mirror?.cpuSeconds();
  const wallMs = mirror ? await mirror.run(transfer) : await transfer();
  const client = process.cpuUsage(clientBefore);
  const mirrorCpu = mirror && mirrorBefore !== undefined ? mirror.cpuSeconds() - mirrorBefore : undefined;
  const sample: Sample = { wallMs, bytes, clientCpu: (client.user + client.system) / 1e6 };
  const gets = await upstreamBlobGets(upstream);
  return mirrorCpu === undefined ? sample : { ...sample, upstreamGets: gets, mirrorCpu };
}

export class Series {
  readonly samples: Sample[] = [];
  /** Highest VmHWM of the mirror processes this row ran on. */
  peakRss: number | undefined;

  add(sample: Sample, mirror?: ProxyProcess): Sample {
    this.samples.push(sample);
    if (mirror) this.peakRss = Math.max(this.peakRss ?? 0, mirror.memory().hwm);
    return sample;
  }

  get wallMs(): number { return median(this.samples.map((s) => s.wallMs)); }
  get gets(): number[] { return this.samples.flatMap((s) => (s.upstreamGets === undefined ? [] : [s.upstreamGets])); }

  row(name: string, goal: string, result?: string): Row {
    const mirrorCpu = this.samples.flatMap((s) => (s.mirrorCpu === undefined ? [] : [s.mirrorCpu]));
    return {
      name, goal, ...(result ? { result } : {}),
      wallMs: this.wallMs,
      bytes: this.samples[0]?.bytes ?? 0,
      ...(this.gets.length ? { upstreamGets: this.gets.join('/') } : {}),
      clientCpuSeconds: median(this.samples.map((s) => s.clientCpu)),
      ...(mirrorCpu.length ? { cpuSeconds: median(mirrorCpu) } : {}),
      ...(this.peakRss !== undefined ? { peakRss: this.peakRss } : {}),
    };
  }

  raw(): string {
    return this.samples.map((s) => s.wallMs.toFixed(0)).join(', ');
  }
}

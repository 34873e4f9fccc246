// Store throughput, one client, no HTTP: write a random blob through a BlobWriter (cold: what a fill costs the
// store, commit included) and read it back whole through open() (warm: what a hit costs), for the filesystem
// store and the S3 store on a real Ceph RGW (memstore: RGW's own cost, not a disk's) at several part
// concurrencies. Prints medians of --runs runs and this process's peak RSS growth during each row.
//   node --import tsx bench/store-throughput.ts [--size-mib 200] [--runs 3]   (OBJECTSTORE=bluestore for a disk)
import { createHash, createCipheriv } from 'node:crypto';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import type { BlobStore } from '../src/cache/blob-store.js';
import { FsBlobStore } from '../src/cache/fs-store.js';
import { S3BlobStore } from '../src/cache/s3-store.js';
import { startCephRgw } from '../test/helpers/ceph-rgw.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { mbPerSecond, median } from './report.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '200' }, runs: { type: 'string', default: '3' } } });
const size = Number(values['size-mib']) * MiB;
const runs = Number(values.runs);

/** Seeded keystream (AES-CTR of zeros): incompressible, the same every run. */
function randomBlob(bytes: number): Buffer {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  return Buffer.concat([cipher.update(Buffer.alloc(bytes)), cipher.final()]);
}

interface Sample { writeMs: number; readMs: number; rssGrowth: number; writeCpuMs: number; readCpuMs: number }

/** Samples RSS while fn runs; returns fn's time and the peak growth over the start. */
async function timed(fn: () => Promise<void>): Promise<{ ms: number; rssGrowth: number; cpuMs: number }> {
  const base = process.memoryUsage.rss();
  const cpu = process.cpuUsage();
  let peak = base;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 10);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  clearInterval(sampler);
  const used = process.cpuUsage(cpu);
  return { ms, rssGrowth: Math.max(0, peak - base), cpuMs: (used.user + used.system) / 1000 };
}

async function once(store: BlobStore, data: Buffer, digest: string): Promise<Sample> {
  await store.delete(digest);
  const write = await timed(async () => {
    const w = await store.createWriter(digest);
    // 1 MiB writes: what BatchedSink hands a writer under load.
    for (let at = 0; at < data.length; at += MiB) await w.write(data.subarray(at, Math.min(at + MiB, data.length)));
    await w.commit(data.length);
    await w.close();
  });
  let bytes = 0;
  const read = await timed(async () => {
    for await (const chunk of await store.open(digest, { start: 0, end: data.length - 1 })) bytes += (chunk as Buffer).length;
  });
  if (bytes !== data.length) throw new Error(`read back ${bytes} of ${data.length} bytes`);
  return { writeMs: write.ms, readMs: read.ms, rssGrowth: Math.max(write.rssGrowth, read.rssGrowth), writeCpuMs: write.cpuMs, readCpuMs: read.cpuMs };
}

async function main(): Promise<void> {
  const data = randomBlob(size);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const work = makeTmpDir('ocimirror-store-bench-');
  const rgw = await startCephRgw();
  try {
    const client = rgw.client();
    const bucket = await rgw.createBucket();
    const fs = new FsBlobStore(join(work, 'fs'));
    await fs.init();
    const s3 = (partConcurrency: number) => new S3BlobStore({ client, bucket, prefix: `c${partConcurrency}/`, spillDir: join(work, `spill-${partConcurrency}`), staleUploadMs: 3_600_000, partConcurrency });
    const stores: [string, BlobStore][] = [['fs (cache.dir)', fs], ['s3, 4 parts in flight (default)', s3(4)], ['s3, 2 parts in flight', s3(2)], ['s3, 8 parts in flight', s3(8)]];
    for (const [, s] of stores) if (s instanceof S3BlobStore) await s.init();
    const samples = new Map<string, Sample[]>(stores.map(([name]) => [name, []]));
    // Interleaved, so load from elsewhere on the machine hits every store alike.
    for (let r = 0; r < runs; r++) for (const [name, store] of stores) samples.get(name)!.push(await once(store, data, digest));
    const check = createHash('sha256');
    for await (const chunk of await stores[1]![1].open(digest)) check.update(chunk as Buffer);
    if (`sha256:${check.digest('hex')}` !== digest) throw new Error('the S3 store gave back different bytes');

    console.log(`store throughput: ${size / MiB} MiB blob, 1 MiB writes, median of ${runs} runs (Ceph RGW ${process.env.OBJECTSTORE ?? 'memstore'} on loopback)\n`);
    const rows = [['store', 'cold write+commit', 'MB/s', 'node CPU', 'warm read', 'MB/s', 'node CPU', 'peak RSS growth']];
    for (const [name] of stores) {
      const s = samples.get(name)!;
      const w = median(s.map((x) => x.writeMs));
      const rd = median(s.map((x) => x.readMs));
      const cpu = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      rows.push([name, `${(w / 1000).toFixed(2)} s`, mbPerSecond(size, w).toFixed(0), cpu(median(s.map((x) => x.writeCpuMs))),
        `${(rd / 1000).toFixed(2)} s`, mbPerSecond(size, rd).toFixed(0), cpu(median(s.map((x) => x.readCpuMs))), `${(Math.max(...s.map((x) => x.rssGrowth)) / MiB).toFixed(0)} MiB`]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
    console.log('\nraw (write ms / read ms):');
    for (const [name] of stores) console.log(`  ${name}: ${samples.get(name)!.map((x) => `${x.writeMs.toFixed(0)}/${x.readMs.toFixed(0)}`).join(', ')}`);
    for (const [, s] of stores) if (s instanceof S3BlobStore) s.close();
  } finally {
    await rgw.stop();
    await removeTmpDir(work);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

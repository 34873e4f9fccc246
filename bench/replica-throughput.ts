// One ocimirror replica, over HTTP, on each store side by side: cold GET (a fresh process and an empty cache:
// upstream → store → client) and warm GET (the same process again: store → client) of one random layer from a real
// Distribution, for the filesystem store, the S3 store on a real Ceph RGW (memstore), the S3 store as a cluster
// replica (Redis leases and ledger), and that replica with cache.store.redirect (warm: a 307, then the bytes
// straight from RGW). Each replica is a separate process; variants are interleaved run by run; medians of --runs.
// Timed GETs only count the bytes (a client that hashes them tops out near 500 MB/s); one untimed GET per replica
// checks the digest.
//   node --import tsx bench/replica-throughput.ts [--size-mib 200] [--runs 3]
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startClusterBackends, startReplicaProcess } from '../test/helpers/cluster.js';
import { startDistribution } from '../test/helpers/distribution.js';
import { buildLargeLayerImage } from '../test/helpers/images.js';
import { startProxyProcess, type ProxyProcess } from '../test/helpers/proxy-process.js';
import { pushImage } from '../test/helpers/push.js';
import { makeTmpDir, removeTmpDir } from '../test/helpers/tmp.js';
import { closeClients, verifiedGet } from './clients.js';
import { mbPerSecond, median } from './report.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '200' }, runs: { type: 'string', default: '3' } } });
const sizeMiB = Number(values['size-mib']);
const runs = Number(values.runs);
const agent = new Agent({ headersTimeout: 300_000, bodyTimeout: 300_000 });

/** A timed GET (following one 307 when the replica redirects) that counts the bytes and checks status and size. */
async function timedGet(url: string, size: number): Promise<number> {
  const t0 = performance.now();
  let res = await request(url, { dispatcher: agent });
  if (res.statusCode === 307) {
    await res.body.dump();
    res = await request(String(res.headers.location), { dispatcher: agent });
  }
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) bytes += chunk.length;
  const ms = performance.now() - t0;
  if (res.statusCode !== 200 || bytes !== size) throw new Error(`GET ${url}: status ${res.statusCode}, ${bytes} of ${size} bytes`);
  return ms;
}

/** The untimed check that the bytes are right: the same GET (to where a 307 points), hashed. */
async function checkedGet(url: string, digest: string, size: number): Promise<void> {
  const first = await request(url, { dispatcher: agent });
  await first.body.dump();
  await verifiedGet(first.statusCode === 307 ? String(first.headers.location) : url, digest, size);
}

const mbps = (bytes: number, ms: number) => mbPerSecond(bytes, ms).toFixed(0);

async function main(): Promise<void> {
  const work = makeTmpDir('ocimirror-bench-replica-');
  const [dist, backends] = await Promise.all([startDistribution(), startClusterBackends()]);
  const started: ProxyProcess[] = [];
  try {
    const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: sizeMiB * MiB, seed: 4242, compression: 'none', dir: work });
    const layer = image.layers[0]!;
    await pushImage(dist.url, 'bench/layer', '1.0', image);
    const mirrors = { 'docker.io': { endpoint: [dist.url] } };
    const s3 = (prefix: string, redirect = false) => ({
      store: { type: 's3', endpoint: backends.rgw.endpoint, bucket: backends.bucket, prefix, redirect, accessKeyId: backends.rgw.accessKeyId, secretAccessKey: backends.rgw.secretAccessKey },
    });
    const variants: Record<string, (run: number) => Promise<ProxyProcess>> = {
      'filesystem': () => startProxyProcess({ mirrors, cache: { maxSize: '64GiB' } }, makeTmpDir('ocimirror-bench-fs-')),
      'S3 (RGW)': (run) => startProxyProcess({ mirrors, cache: { maxSize: '64GiB', ...s3(`s3-${run}/`) } }, makeTmpDir('ocimirror-bench-s3-')),
      'S3 + cluster': (run) => startReplicaProcess(backends, mirrors, { maxSize: '64GiB', ...s3(`cl-${run}/`) }),
      'S3 + cluster + redirect': (run) => startReplicaProcess(backends, mirrors, { maxSize: '64GiB', ...s3(`rd-${run}/`, true) }),
    };
    const times: Record<string, { cold: number[]; warm: number[] }> = {};
    for (let run = 0; run < runs; run++) {
      for (const [name, start] of Object.entries(variants)) {
        const replica = await start(run);
        started.push(replica);
        const url = `${replica.url}/v2/bench/layer/blobs/${layer.digest}?ns=docker.io`;
        const cold = await timedGet(url, layer.size);
        // The commit (fsync, or completing the multipart upload) finishes just behind the last byte.
        let warm = NaN;
        for (let attempt = 0; attempt < 50 && Number.isNaN(warm); attempt++) {
          const hit = await request(url, { method: 'HEAD', dispatcher: agent });
          await hit.body.dump();
          if (replica.logs().some((l) => l.msg === 'request' && l.method === 'HEAD' && l.cache === 'hit')) warm = await timedGet(url, layer.size);
          else await new Promise((r) => setTimeout(r, 100));
        }
        await checkedGet(url, layer.digest, layer.size);
        await replica.stop();
        (times[name] ??= { cold: [], warm: [] }).cold.push(cold);
        times[name]!.warm.push(warm);
        process.stdout.write(`run ${run + 1} ${name}: cold ${cold.toFixed(0)} ms, warm ${warm.toFixed(0)} ms\n`);
      }
    }
    process.stdout.write(`\nOne replica, one client, a ${sizeMiB} MiB layer (medians of ${runs}; MB/s = 10^6 bytes/s)\n`);
    process.stdout.write(`${'store'.padEnd(26)} ${'cold MB/s'.padStart(10)} ${'warm MB/s'.padStart(10)} ${'cold s'.padStart(8)} ${'warm s'.padStart(8)}\n`);
    for (const [name, t] of Object.entries(times)) {
      const [c, w] = [median(t.cold), median(t.warm)];
      process.stdout.write(`${name.padEnd(26)} ${mbps(layer.size, c).padStart(10)} ${mbps(layer.size, w).padStart(10)} ${(c / 1000).toFixed(2).padStart(8)} ${(w / 1000).toFixed(2).padStart(8)}\n`);
    }
  } finally {
    await Promise.allSettled(started.map((p) => p.stop()));
    await Promise.allSettled([dist.close(), backends.close()]);
    await Promise.all([agent.close(), closeClients()]);
    await removeTmpDir(work);
  }
}

await main();

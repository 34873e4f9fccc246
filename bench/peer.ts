// Reference peer: CNCF Distribution in proxy mode in front of the same upstream, measured the same way (one run).
// Its failures are reported, not thrown: the peer's bugs are not the benchmark's errors.
import { startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { fetchBlob, fetchConcurrently } from './blob-client.js';
import { mbPerSecond, seconds } from './report.js';
import { upstreamBlobGets as gets } from './series.js';

async function withPeer<T>(upstream: Distribution, fn: (peerUrl: string) => Promise<T>): Promise<T> {
  const peer = await startDistribution({ proxyRemoteUrl: upstream.url });
  try { return await fn(peer.url); } finally { await peer.close(); }
}

export async function measurePeer(upstream: Distribution, path: string, digest: string, size: number, clients: number): Promise<string> {
  const lines = ['reference peer: Distribution proxy mode (same upstream, one run, fresh storage per row)'];
  const figure = (ms: number, bytes: number) => `${seconds(ms).padStart(8)}  ${mbPerSecond(bytes, ms).toFixed(0).padStart(5)} MB/s`;
  const attempt = async (label: string, fn: () => Promise<string>) => {
    try { lines.push(`  ${label.padEnd(24)}${await fn()}`); } catch (err) {
      lines.push(`  ${label.padEnd(24)}error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      await upstream.flushLog().catch(() => undefined);
      upstream.resetLog();
    }
  };
  await withPeer(upstream, async (peerUrl) => {
    upstream.resetLog();
    await attempt('cold GET', async () => {
      const t = await fetchBlob(peerUrl + path, digest, size);
      return `${figure(t.ms, size)}  upstream blob GETs ${await gets(upstream)}`;
    });
    await attempt('warm GET', async () => {
      const t = await fetchBlob(peerUrl + path, digest, size);
      return `${figure(t.ms, size)}  upstream blob GETs ${await gets(upstream)}`;
    });
  });
  await withPeer(upstream, async (peerUrl) => {
    upstream.resetLog();
    await attempt(`${clients} concurrent cold`, async () => {
      const r = await fetchConcurrently(peerUrl + path, digest, size, clients);
      return `${figure(r.wallMs, clients * size)}  upstream blob GETs ${await gets(upstream)}`;
    });
  });
  return lines.join('\n');
}

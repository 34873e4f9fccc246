// Health memory: a blackholed first endpoint costs one connect timeout, once; later pulls do not touch it; the
// state change is logged once; a background probe brings a recovered endpoint back. Timings are printed, not asserted:
// what each pull asked of which endpoint is the evidence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { waitFor } from '../helpers/eventually.js';
import { startBlackhole } from '../helpers/fault-upstream.js';
import { buildImage, type BuiltImage } from '../helpers/images.js';
import { pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';

const CONNECT_TIMEOUT_MS = 1000;

async function images(dist: Distribution[], labels: string[]): Promise<BuiltImage[]> {
  const built = await Promise.all(labels.map((label) => buildImage({ format: 'oci', label })));
  for (const [i, image] of built.entries()) for (const d of dist) await pushImage(d.url, `library/${labels[i]}`, '1.0', image);
  return built;
}

describe('a blackholed first endpoint', () => {
  let dist: Distribution;
  let blackhole: Awaited<ReturnType<typeof startBlackhole>>;
  let healthyOnly: TestProxy;
  let withBlackhole: TestProxy;
  let built: BuiltImage[];

  beforeAll(async () => {
    dist = await startDistribution();
    blackhole = await startBlackhole({ tls: true });
    built = await images([dist], ['hm-healthy', 'hm-first', 'hm-second', 'hm-third']);
    const common = {
      cache: { tagTtl: '0s' },
      // A long cooldown: no probe may touch the blackhole while the pulls are measured.
      upstream: { connectTimeout: `${CONNECT_TIMEOUT_MS}ms`, responseTimeout: '5s', health: { cooldown: '10m', maxCooldown: '10m', probeInterval: '10m' } },
    };
    healthyOnly = await startTestProxy({ ...common, mirrors: { 'docker.io': { endpoint: [dist.url] } } });
    withBlackhole = await startTestProxy({
      ...common,
      mirrors: { 'docker.io': { endpoint: [blackhole.url, dist.url] } },
      configs: { [blackhole.host]: { tls: { insecure_skip_verify: true } } },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([healthyOnly?.close(), withBlackhole?.close(), dist?.close(), blackhole?.close()]);
  });

  it('costs one connect timeout on the first pull and nothing on later pulls', async () => {
    const healthy = await pullThrough(healthyOnly.url, 'library/hm-healthy', '1.0', { ns: 'docker.io' });
    const before = blackhole.connections();
    const first = await pullThrough(withBlackhole.url, 'library/hm-first', '1.0', { ns: 'docker.io' });
    const afterFirst = blackhole.connections();
    const second = await pullThrough(withBlackhole.url, 'library/hm-second', '1.0', { ns: 'docker.io' });
    const third = await pullThrough(withBlackhole.url, 'library/hm-third', '1.0', { ns: 'docker.io' });
    console.log(`[timings] healthy endpoint only: ${healthy.ms.toFixed(0)} ms; blackholed first endpoint (connectTimeout ${CONNECT_TIMEOUT_MS} ms): first pull ${first.ms.toFixed(0)} ms, second pull ${second.ms.toFixed(0)} ms, third pull ${third.ms.toFixed(0)} ms`);

    expect([healthy.digest, first.digest, second.digest, third.digest]).toEqual(built.map((b) => b.manifestDigest));
    expect(afterFirst - before).toBeGreaterThanOrEqual(1);
    // The first pull asked the blackhole once, gave up at its connect timeout, and went on to Distribution.
    const blackholeAttempts = withBlackhole.requests(/library\/hm-first\//)
      .flatMap((l) => ((l.attempts ?? []) as string[]).filter((a) => a.includes(blackhole.host)));
    expect(blackholeAttempts).toHaveLength(1);
    expect(blackholeAttempts[0]).toMatch(/CONNECT_TIMEOUT|Connect Timeout/i);
    // Later pulls never open a connection to the blackhole, so nothing of theirs waits for a connect timeout.
    expect(blackhole.connections()).toBe(afterFirst);
  }, 30_000);

  it('logs the state change once (warn), not per request', () => {
    const down = withBlackhole.warnings(/marked down/);
    expect(down).toHaveLength(1);
    expect(String(down[0]?.endpoint)).toContain(blackhole.host);
    expect(healthyOnly.warnings(/./)).toHaveLength(0);
    // Every request of the later pulls was answered by Distribution at the first attempt.
    const later = withBlackhole.requests(/library\/hm-(second|third)\//);
    expect(later.length).toBeGreaterThanOrEqual(8);
    for (const line of later) expect(line.attempts ?? [], String(line.url)).not.toContainEqual(expect.stringContaining(blackhole.host));
  });
});

describe('a background probe brings a recovered endpoint back', () => {
  let first: Distribution;
  let second: Distribution;
  let proxy: TestProxy;
  let built: BuiltImage[];

  beforeAll(async () => {
    [first, second] = await Promise.all([startDistribution(), startDistribution()]);
    built = await images([first, second], ['probe-a', 'probe-b', 'probe-c']);
    proxy = await startTestProxy({
      cache: { tagTtl: '0s' },
      upstream: { connectTimeout: '1s', health: { cooldown: '200ms', maxCooldown: '400ms', probeInterval: '100ms' } },
      mirrors: { 'docker.io': { endpoint: [first.url, second.url] } },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([proxy?.close(), first?.close(), second?.close()]);
  });

  /** Every request of one image's pull (tag HEAD, manifest GET, each blob) named `endpoint` as the one that answered. */
  function expectAnsweredBy(name: string, image: BuiltImage, endpoint: string): void {
    const lines = proxy.requests(new RegExp(`library/${name}/`));
    expect(lines.map((l) => l.endpoint), name).toEqual(Array(2 + image.blobs.length).fill(endpoint));
  }

  it('down while stopped (logged once), up again after a probe (logged once), then preferred again', async () => {
    // Count the first endpoint's failed probes: the positive signal that probes ran while it stayed down.
    const health = proxy.proxy.upstreams.allEndpoints().find((e) => e.client.name === first.url)!.health;
    let probesFailed = 0;
    const probeFailed = health.probeFailed.bind(health);
    health.probeFailed = (reason) => { probesFailed++; probeFailed(reason); };

    await first.stop();
    const a = await pullThrough(proxy.url, 'library/probe-a', '1.0', { ns: 'docker.io' });
    expect(a.digest).toBe(built[0]!.manifestDigest);
    // Several probes fail while it stays down; none of them logs.
    await waitFor('two failed probes', () => probesFailed >= 2, 10_000);
    const b = await pullThrough(proxy.url, 'library/probe-b', '1.0', { ns: 'docker.io' });
    expect(b.digest).toBe(built[1]!.manifestDigest);
    expect(proxy.warnings(/marked down/)).toHaveLength(1);
    expect(proxy.warnings(/healthy again/)).toHaveLength(0);
    expectAnsweredBy('probe-b', built[1]!, second.url);

    await first.start();
    await waitFor('the probe to mark the first endpoint healthy', () => proxy.warnings(/healthy again/).length > 0, 10_000);
    expect(proxy.warnings(/healthy again/)).toHaveLength(1);
    expect(String(proxy.warnings(/healthy again/)[0]?.endpoint)).toContain(first.host);

    const c = await pullThrough(proxy.url, 'library/probe-c', '1.0', { ns: 'docker.io' });
    expect(c.digest).toBe(built[2]!.manifestDigest);
    await first.flushLog();
    expect(first.count('GET', /^\/v2\/library\/probe-c\/blobs\//)).toBe(built[2]!.blobs.length);
    expectAnsweredBy('probe-c', built[2]!, first.url);
    expect(proxy.warnings(/marked down|healthy again/)).toHaveLength(2);
  }, 30_000);
});

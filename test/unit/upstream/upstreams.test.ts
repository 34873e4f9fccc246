// Issue 8 rule 5: what "*" opens for the registries clients name is bounded. Past MAX_WILDCARD_REGISTRIES the least
// recently used mirror is dropped and its own connections are closed; configured endpoints and metric labels stay.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { MAX_WILDCARD_REGISTRIES, Upstreams } from '../../../src/upstream/upstreams.js';
import { waitFor } from '../../helpers/eventually.js';
import { startFaultUpstream, type FaultUpstream } from '../../helpers/fault-upstream.js';
import { buildImage } from '../../helpers/images.js';
import { testNetwork } from '../../helpers/test-network.js';

const names = (n: number) => Array.from({ length: n }, (_, i) => `r${i}.example.test`);

let upstream: FaultUpstream;
let named: FaultUpstream;
let upstreams: Upstreams;

beforeAll(async () => {
  upstream = await startFaultUpstream({ tls: true });
  named = await startFaultUpstream();
  const image = await buildImage({ format: 'oci', label: 'wildcard bound' });
  upstream.add('library/x', '1.0', image);
  const config = parseConfig('c.yaml', JSON.stringify({
    upstream: { allowPrivateNetworks: true },
    mirrors: { '*': { endpoint: [] }, 'docker.io': { endpoint: [named.url] } },
    configs: { '*': { tls: { insecure_skip_verify: true } } },
  }));
  const hosts = Object.fromEntries(names(MAX_WILDCARD_REGISTRIES + 1).map((n) => [n, '127.0.0.1']));
  upstreams = new Upstreams(config, pino({ level: 'silent' }), '1.1 test', { network: testNetwork({ hosts }) });
}, 60_000);

afterAll(async () => {
  await upstreams?.close();
  await Promise.allSettled([upstream?.close(), named?.close()]);
});

describe('mirrors opened for "*"', () => {
  it('are kept up to MAX_WILDCARD_REGISTRIES; the least recently used is dropped and its connections closed', async () => {
    const [first = '', ...rest] = names(MAX_WILDCARD_REGISTRIES + 1);
    const mirror = upstreams.resolve(`${first}:${upstream.port}`);
    expect(mirror).toBeDefined();
    const { res } = await mirror!.fetch({ method: 'GET', repo: 'library/x', suffix: '/manifests/1.0', headers: {} });
    await res.body.dump();
    expect(upstream.openConnections()).toBe(1);
    expect(upstreams.resolve(`${first}:${upstream.port}`)).toBe(mirror);
    for (const name of rest) upstreams.resolve(`${name}:${upstream.port}`);
    await waitFor('the evicted mirror\'s connection to close', () => upstream.openConnections() === 0, 10_000);
    expect(upstreams.resolve(`${first}:${upstream.port}`)).not.toBe(mirror);
  });

  it('the dropped mirror still finishes a request it had started (its pool reopens)', async () => {
    const mirror = upstreams.resolve(`r1.example.test:${upstream.port}`)!;
    for (let i = 0; i < MAX_WILDCARD_REGISTRIES; i++) upstreams.resolve(`other${i}.example.test`);
    expect(upstreams.resolve(`r1.example.test:${upstream.port}`)).not.toBe(mirror);
    const { res } = await mirror.fetch({ method: 'GET', repo: 'library/x', suffix: '/manifests/1.0', headers: {} });
    expect(res.status).toBe(200);
    await res.body.dump();
  });

  it('never appear among the endpoints metrics list, nor as a metric label', () => {
    expect(upstreams.allEndpoints().map((e) => e.client.name)).toEqual([named.url]);
    expect(upstreams.isConfiguredEndpoint(named.url)).toBe(true);
    expect(upstreams.isConfiguredEndpoint(`https://r1.example.test:${upstream.port}`)).toBe(false);
  });
});

// The status page in real headless Chromium (Debian's, driven by playwright-core): it lists the configured registries
// and endpoints in order, a throttled fill's progress bar advances, an endpoint's announced rate limit appears, a
// stopped endpoint turns "down" once a request finds it gone and "up" again after a probe, no credential is ever on
// the page, and a screenshot is kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { artifactPath, launchChromium } from '../helpers/browser.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { buildImage, buildLargeLayerImage, type Blob, type BuiltImage } from '../helpers/images.js';
import { BlobClient } from '../helpers/proxy-process.js';
import { fetchFrom, pullThrough, startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { pushImage } from '../helpers/push.js';
import { makeTmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const HARBOR = 'harbor.test';
let dist: Distribution;
let up: FaultUpstream;
let proxy: TestProxy;
let browser: Browser;
let page: Page;
let small: BuiltImage;
let layer: Blob;
let slowPull: BlobClient | undefined;

beforeAll(async () => {
  dist = await startDistribution({ auth: 'htpasswd', username: 'robot', password: 'dist-s3cret-pw' });
  small = await buildImage({ format: 'oci', label: 'status-page' });
  await pushImage(dist.url, 'k3s/app', '1.0', small, { username: 'robot', password: 'dist-s3cret-pw' });
  const big = await buildLargeLayerImage({ format: 'oci', sizeBytes: 32 * MiB, seed: 1203, compression: 'none', dir: makeTmpDir() });
  layer = big.layers[0]!;
  up = await startFaultUpstream();
  up.add('library/big', '1.0', big);
  up.fault({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`) }, { kind: 'throttle', bytesPerSecond: 2 * MiB });
  proxy = await startTestProxy({
    upstream: { connectTimeout: '1s', health: { cooldown: '1s', maxCooldown: '1s', probeInterval: '1s' } },
    mirrors: { 'docker.io': { endpoint: [up.url] }, [HARBOR]: { endpoint: [dist.url, up.url] } },
    configs: { [dist.host]: { auth: { username: 'robot', password: 'dist-s3cret-pw' } } },
  });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 900, height: 1100 } });
}, 120_000);

afterAll(async () => {
  slowPull?.abort();
  await browser?.close();
  await Promise.allSettled([proxy?.close(), dist?.close(), up?.close()]);
});

const endpointState = (name: string) => `li.endpoint[data-endpoint="${name}"]`;

describe('status page in Chromium', () => {
  it('renders the configured registries and their endpoints in order, all up', async () => {
    const res = await page.goto(`${proxy.url}/status`);
    expect(res?.status()).toBe(200);
    const shown = await page.$$eval('article.registry', (articles) => articles.map((a) => ({
      registry: a.getAttribute('data-registry'),
      endpoints: [...a.querySelectorAll('li.endpoint')].map((li) => [li.getAttribute('data-endpoint'), li.getAttribute('data-state')]),
    })));
    expect(shown).toEqual([
      { registry: 'docker.io', endpoints: [[up.url, 'up']] },
      { registry: HARBOR, endpoints: [[dist.url, 'up'], [up.url, 'up']] },
    ]);
  });

  it('lists a pull after the page refreshes itself', async () => {
    const pulled = await pullThrough(proxy.url, 'k3s/app', '1.0', { ns: HARBOR });
    expect(pulled.digest).toBe(small.manifestDigest);
    await page.waitForSelector(`ol.pulls li:has-text("${HARBOR}/k3s/app:1.0")`, { timeout: 15_000 });
    expect(await page.textContent('ol.pulls li')).toContain('127.0.0.1');
  });

  it('advances a fill\'s progress bar during a throttled pull', async () => {
    slowPull = new BlobClient(`${proxy.url}/v2/library/big/blobs/${layer.digest}?ns=docker.io`);
    const bar = `div.fill[data-digest="${layer.digest}"] [role="progressbar"]`;
    await page.waitForSelector(bar, { timeout: 15_000 });
    const first = Number(await page.getAttribute(bar, 'aria-valuenow'));
    expect(Number(await page.getAttribute(bar, 'aria-valuemax'))).toBe(layer.size);
    const now = async () => Number(await page.getAttribute(bar, 'aria-valuenow'));
    await expect.poll(now, { timeout: 15_000, interval: 250 }).toBeGreaterThan(first);
    expect(await now()).toBeLessThan(layer.size);
  });

  it('shows an endpoint\'s rate-limit headroom once it announces one', async () => {
    expect(await page.$('#rate-limits')).toBeNull();
    const limits = { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '7;w=21600' };
    up.fault({ method: 'HEAD', path: /\/library\/limited\/manifests\// }, { kind: 'status', status: 429, headers: limits }, 1);
    expect((await fetchFrom(proxy.url, '/v2/library/limited/manifests/1.0?ns=docker.io', { method: 'HEAD' })).status).toBe(429);
    const bar = `div.limit[data-endpoint="${up.url}"] [role="progressbar"]`;
    await page.waitForSelector(bar, { timeout: 15_000 });
    expect([await page.getAttribute(bar, 'aria-valuenow'), await page.getAttribute(bar, 'aria-valuemax')]).toEqual(['7', '100']);
    expect(await page.textContent(`div.limit[data-endpoint="${up.url}"]`)).toMatch(/7 of 100 requests left · resets in [56] h \d+ min/);
  });

  it('shows a stopped endpoint as down (with its error and next probe) once a request finds it gone, then up after a probe', async () => {
    await dist.stop();
    // Health is learnt from traffic: the next request to the registry meets the stopped endpoint.
    const res = await fetchFrom(proxy.url, `/v2/k3s/app/manifests/2.0?ns=${HARBOR}`, { method: 'HEAD' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    const down = `${endpointState(dist.url)}[data-state="down"]`;
    await page.waitForSelector(down, { timeout: 15_000 });
    const text = await page.textContent(down);
    expect(text).toMatch(/next probe (in \d+ s|due)/);
    expect(text).toContain('last error:');
    expect(await page.getAttribute(endpointState(up.url), 'data-state')).toBe('up');

    const shot = artifactPath('status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    await phone.goto(`${proxy.url}/`);
    await phone.screenshot({ path: artifactPath('status-page-phone.png'), fullPage: true });
    await phone.close();
    console.log(`[artifacts] status page screenshots: ${shot}, ${artifactPath('status-page-phone.png')}`);

    await dist.start();
    await page.waitForSelector(`${endpointState(dist.url)}[data-state="up"]`, { timeout: 15_000 });
  });

  it('never shows a credential, on the page or in status.json', async () => {
    expect(await page.content()).not.toContain('dist-s3cret-pw');
    const json = await fetchFrom(proxy.url, '/status.json');
    expect(json.status).toBe(200);
    expect(json.body.toString('utf8')).not.toContain('dist-s3cret-pw');
    expect(json.body.toString('utf8')).not.toContain('robot');
  });
});

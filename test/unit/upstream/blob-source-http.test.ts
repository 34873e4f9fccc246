// The blob source over real HTTP (undici clients against in-process fault upstreams): a reset body and an endpoint
// that ignores Range still add up to the right bytes, and an abort mid-body blames no endpoint.
import { createHash } from 'node:crypto';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { BrokeOff, type BlobSink } from '../../../src/upstream/blob-body.js';
import { UpstreamBlobSource } from '../../../src/upstream/blob-source.js';
import type { MirrorUpstream } from '../../../src/upstream/fallthrough.js';
import { Upstreams } from '../../../src/upstream/upstreams.js';
import { startFaultUpstream, type FaultUpstream } from '../../helpers/fault-upstream.js';
import { blobBytes, buildLargeLayerImage, type Blob } from '../../helpers/images.js';
import { makeTmpDir } from '../../helpers/tmp.js';

const MiB = 1024 * 1024;
const CUT = MiB + 4321;
let first: FaultUpstream;
let second: FaultUpstream;
let layer: Blob;
let data: Buffer;
let upstreams: Upstreams | undefined;

beforeAll(async () => {
  const image = await buildLargeLayerImage({ format: 'oci', sizeBytes: 3 * MiB, seed: 77, compression: 'none', dir: makeTmpDir() });
  layer = image.layers[0]!;
  data = await blobBytes(layer);
  [first, second] = await Promise.all([startFaultUpstream(), startFaultUpstream()]);
  for (const up of [first, second]) up.add('library/big', '1.0', image);
});
afterAll(async () => { await Promise.all([first?.close(), second?.close()]); });
afterEach(async () => {
  first.clearFaults();
  second.clearFaults();
  await upstreams?.close();
  upstreams = undefined;
});

/** The docker.io mirror over both fault upstreams, with fresh endpoint health. */
function freshMirror(): MirrorUpstream {
  const config = parseConfig('blob-source.yaml', `mirrors:\n  docker.io:\n    endpoint: ["${first.url}", "${second.url}"]\n`);
  upstreams = new Upstreams(config, pino({ level: 'silent' }), '1.1 ocimirror-test');
  return upstreams.resolve('docker.io')!;
}

function hashingSink(): BlobSink & { hex(): string; bytes: number } {
  const hash = createHash('sha256');
  const sink = { bytes: 0, write: (c: Buffer) => { hash.update(c); sink.bytes += c.length; return undefined; }, hex: () => `sha256:${hash.digest('hex')}` };
  return sink;
}

describe('UpstreamBlobSource over HTTP', () => {
  it('a reset at CUT, then an endpoint that ignores Range: the transfer delivers exactly the blob', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'reset-body', afterBytes: CUT }, 1);
    second.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'ignore-range' }, 1);
    const mark = second.requests().length;
    const transfer = new UpstreamBlobSource(503).transfer({ mirror: freshMirror(), repo: 'library/big', digest: layer.digest });
    const sink = hashingSink();
    const opened = await transfer.open(0);
    expect({ size: opened.size, endpoint: opened.endpoint }).toEqual({ size: layer.size, endpoint: first.url });
    const err = await opened.body.pipeTo(sink).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BrokeOff);
    expect(sink.bytes).toBe(CUT);
    const resumed = await transfer.open(sink.bytes);
    expect({ start: resumed.start, endpoint: resumed.endpoint }).toEqual({ start: CUT, endpoint: second.url });
    await resumed.body.pipeTo(sink);
    expect({ bytes: sink.bytes, digest: sink.hex() }).toEqual({ bytes: data.length, digest: layer.digest });
    expect(second.requests().slice(mark).map((r) => r.headers.range)).toEqual([`bytes=${CUT}-`]);
  });

  it('an abort while the endpoint stalls rejects with the reason and leaves the endpoint healthy', async () => {
    first.fault({ method: 'GET', path: /\/blobs\// }, { kind: 'stall-body', afterBytes: CUT }, 1);
    const controller = new AbortController();
    const transfer = new UpstreamBlobSource(503).transfer({ mirror: freshMirror(), repo: 'library/big', digest: layer.digest, signal: controller.signal });
    const opened = await transfer.open(0);
    let reached!: () => void;
    const atCut = new Promise<void>((resolve) => { reached = resolve; });
    let bytes = 0;
    const piping = opened.body.pipeTo({ write: (c) => { bytes += c.length; if (bytes >= CUT) reached(); return undefined; } }).then(() => undefined, (e: unknown) => e);
    await atCut;
    const reason = new Error('ocimirror is shutting down');
    controller.abort(reason);
    expect(await piping).toBe(reason);
    expect(bytes).toBe(CUT);
    const health = upstreams!.allEndpoints().find((e) => e.client.name === opened.endpoint)!.health;
    expect([opened.endpoint, health.lastError]).toEqual([first.url, undefined]);
    expect(transfer.excluded.size).toBe(0);
  });
});

// The blob source with fake endpoint clients: fall-through order, placing bytes at the wanted offset (Range, or
// skipping when an endpoint ignores it), refusing answers that start elsewhere or contradict the size, bodies that
// break off (health + exclusion), and the error a client gets when no endpoint is left.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { OciError } from '../../../src/oci/errors.js';
import { BrokeOff, type BlobSink } from '../../../src/upstream/blob-body.js';
import { UpstreamBlobSource, type BlobTransfer } from '../../../src/upstream/blob-source.js';
import type { EndpointClient } from '../../../src/upstream/client.js';
import { MirrorUpstream, type UpstreamEndpoint } from '../../../src/upstream/fallthrough.js';
import { EndpointHealth } from '../../../src/upstream/health.js';

const blob = randomBytes(10_000);
const S = blob.length;
const DIGEST = `sha256:${'a'.repeat(64)}`;
const HEALTH = { failureThreshold: 1, cooldownMs: 1000, maxCooldownMs: 8000, probeIntervalMs: 500 };

interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Body chunks; by default the blob from the Range start (or all of it). */
  chunks?: Buffer[];
  /** After the chunks: 'end' (default), 'reset' (a socket error) or 'hang' (until the request is aborted). */
  then?: 'end' | 'reset' | 'hang';
}

type FakeEndpoint = UpstreamEndpoint & { requests: { path: string; headers: Record<string, string> }[] };

function bodyOf(r: Reply, signal: AbortSignal | undefined): Readable & { dump(): Promise<void> } {
  const chunks = r.chunks ?? [];
  // A hanging body is a plain Readable: destroying a generator-backed one waits for the generator, which never returns.
  const stream = r.then === 'hang' ? new Readable({ read() {} }) : Readable.from((async function* () {
    for (const c of chunks) yield c;
    if (r.then === 'reset') throw Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
  })());
  if (r.then === 'hang') for (const c of chunks) stream.push(c);
  // As undici does: aborting the request destroys its body with the signal's reason.
  signal?.addEventListener('abort', () => stream.destroy(signal.reason as Error), { once: true });
  return Object.assign(stream, { dump: async () => { stream.destroy(); } });
}

function endpoint(name: string, replies: Reply[]): FakeEndpoint {
  const requests: FakeEndpoint['requests'] = [];
  const client = {
    name,
    endpoint: { apiRoot: '/v2' },
    async request(_method: string, path: string, headers: Record<string, string>, _scope: string, signal?: AbortSignal) {
      requests.push({ path, headers });
      const r = replies.length > 1 ? replies.shift()! : replies[0]!;
      return { status: r.status, headers: r.headers ?? {}, body: bodyOf(r, signal), authAttempted: false };
    },
  } as unknown as EndpointClient;
  return { client, health: new EndpointHealth(name, HEALTH, pino({ level: 'silent' })), rewrites: true, requests };
}

/** 200 with the whole blob (what a first request, or an endpoint ignoring Range, gets). */
const whole = (extra: Partial<Reply> = {}): Reply => ({ status: 200, headers: { 'content-length': String(S) }, chunks: [blob], ...extra });
/** 206 from `from` to the end. */
const rest = (from: number, extra: Partial<Reply> = {}): Reply => ({
  status: 206, headers: { 'content-range': `bytes ${from}-${S - 1}/${S}`, 'content-length': String(S - from) }, chunks: [blob.subarray(from)], ...extra,
});

function transferOn(endpoints: UpstreamEndpoint[], opts: { failureStatus?: 503 | 504 | 404; signal?: AbortSignal; exclude?: ReadonlySet<UpstreamEndpoint> } = {}): BlobTransfer {
  const mirror = new MirrorUpstream('docker.io', endpoints, {});
  return new UpstreamBlobSource(opts.failureStatus ?? 503).transfer({
    mirror, repo: 'library/x', digest: DIGEST, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.exclude ? { exclude: opts.exclude } : {}),
  });
}

function collector(): BlobSink & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  return { write: (c) => { chunks.push(c); return undefined; }, bytes: () => Buffer.concat(chunks) };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (err) { return err; }
  throw new Error('expected a rejection');
}

describe('open(offset): where the bytes come from', () => {
  it('offset 0: the whole blob from the first endpoint, size from Content-Length, no Range asked', async () => {
    const a = endpoint('a', [whole()]);
    const b = endpoint('b', [whole()]);
    const opened = await transferOn([a, b]).open(0);
    expect({ size: opened.size, start: opened.start, endpoint: opened.endpoint }).toEqual({ size: S, start: 0, endpoint: 'a' });
    expect(opened.attempts).toEqual([{ endpoint: 'a', status: 200, ms: expect.any(Number) }]);
    expect(a.requests).toEqual([{ path: `/library/x/blobs/${DIGEST}`, headers: { 'accept-encoding': 'identity' } }]);
    const sink = collector();
    await opened.body.pipeTo(sink);
    expect(sink.bytes().equals(blob)).toBe(true);
    expect(b.requests).toEqual([]);
  });

  it('a resume asks Range: bytes=<offset>- and delivers a 206 that starts there as it is', async () => {
    const a = endpoint('a', [rest(4000)]);
    const opened = await transferOn([a]).open(4000);
    expect(a.requests[0]?.headers.range).toBe('bytes=4000-');
    expect({ size: opened.size, start: opened.start }).toEqual({ size: S, start: 4000 });
    const sink = collector();
    await opened.body.pipeTo(sink);
    expect(sink.bytes().equals(blob.subarray(4000))).toBe(true);
  });

  it('an endpoint that ignores Range (200, whole blob in small chunks): the source skips what was asked to skip', async () => {
    const chunks = Array.from({ length: 10 }, (_, i) => blob.subarray(i * 1000, (i + 1) * 1000));
    const a = endpoint('a', [whole({ chunks })]);
    const opened = await transferOn([a]).open(3500);
    expect(opened.start).toBe(3500);
    const sink = collector();
    await opened.body.pipeTo(sink);
    expect(sink.bytes().equals(blob.subarray(3500))).toBe(true);
  });

  it('a Content-Range that starts elsewhere, or a 206 without one, moves to the next endpoint without counting against health', async () => {
    const a = endpoint('a', [{ ...rest(0), status: 206 }]);
    const b = endpoint('b', [{ status: 206, headers: { 'content-length': String(S - 4000) }, chunks: [blob.subarray(4000)] }]);
    const c = endpoint('c', [rest(4000)]);
    const transfer = transferOn([a, b, c]);
    const opened = await transfer.open(4000);
    expect(opened.endpoint).toBe('c');
    expect(transfer.attempts.map((x) => `${x.endpoint} ${x.error ?? x.status}`)).toEqual([
      `a Content-Range bytes 0-${S - 1}/${S} does not start at byte 4000`, 'b Content-Range (none) does not start at byte 4000', 'c 206',
    ]);
    expect([a.health.lastError, b.health.lastError]).toEqual([undefined, undefined]);
    expect([...transfer.excluded]).toEqual([a, b]);
  });

  it('a size that contradicts what an earlier endpoint said moves on: never mix two blobs\' bytes', async () => {
    const a = endpoint('a', [whole({ chunks: [blob.subarray(0, 2000)], then: 'reset' })]);
    const longer = endpoint('longer', [{ status: 200, headers: { 'content-length': String(S + 1) }, chunks: [blob] }]);
    const otherTotal = endpoint('other-total', [{ status: 206, headers: { 'content-range': `bytes 2000-${S}/${S + 1}` }, chunks: [blob.subarray(2000)] }]);
    const good = endpoint('good', [rest(2000)]);
    const transfer = transferOn([a, longer, otherTotal, good]);
    const first = await transfer.open(0);
    await expect(first.body.pipeTo(collector())).rejects.toBeInstanceOf(BrokeOff);
    const second = await transfer.open(2000);
    expect({ endpoint: second.endpoint, size: second.size }).toEqual({ endpoint: 'good', size: S });
    expect(transfer.attempts.filter((x) => x.error?.startsWith('size')).map((x) => `${x.endpoint} ${x.error}`)).toEqual([
      `longer size ${S + 1} contradicts ${S}`, `other-total size ${S + 1} contradicts ${S}`,
    ]);
  });

  it('the first size given holds for the transfer, even when the first endpoint sent none', async () => {
    const a = endpoint('a', [{ status: 200, chunks: [blob.subarray(0, 100)], then: 'reset' }]);
    const b = endpoint('b', [rest(100)]);
    const transfer = transferOn([a, b]);
    const first = await transfer.open(0);
    expect(first.size).toBeUndefined();
    await expect(first.body.pipeTo(collector())).rejects.toBeInstanceOf(BrokeOff);
    expect((await transfer.open(100)).size).toBe(S);
  });
});

describe('a body that breaks off', () => {
  it.each([
    // what, the endpoint's answer, offset opened, byte it broke off at, why
    ['a reset mid-body', whole({ chunks: [blob.subarray(0, 3000)], then: 'reset' }), 0, 3000, /other side closed/],
    ['fewer bytes than Content-Length', whole({ chunks: [blob.subarray(0, 3000)] }), 0, 3000, /body ended after 3000 of 10000 bytes/],
    ['more bytes than Content-Length', whole({ chunks: [blob, Buffer.from('x')] }), 0, S, /more bytes than its Content-Length/],
    ['an ignored Range whose body ends before the offset', whole({ chunks: [blob.subarray(0, 10)] }), 50, 50, /ended before byte 50/],
  ] as [string, Reply, number, number, RegExp][])('%s: BrokeOff, counted against health, excluded; the next open resumes elsewhere', async (_what, reply, offset, at, why) => {
    const a = endpoint('a', [reply]);
    const b = endpoint('b', [rest(at)]);
    const transfer = transferOn([a, b]);
    const opened = await transfer.open(offset);
    const err = await rejection(opened.body.pipeTo(collector()));
    expect(err).toBeInstanceOf(BrokeOff);
    expect(err).toMatchObject({ endpoint: 'a', at, reason: expect.stringMatching(why) });
    expect(a.health.isDown).toBe(true);
    expect(transfer.excluded.has(a)).toBe(true);
    expect(transfer.attempts.at(-1)).toMatchObject({ endpoint: 'a', error: expect.stringMatching(why) });
    const resumed = await transfer.open(at);
    expect(resumed.endpoint).toBe('b');
    expect(b.requests[0]?.headers.range).toBe(`bytes=${at}-`);
  });

  it('the sink\'s own failure is passed through unchanged and blames nobody', async () => {
    const a = endpoint('a', [whole()]);
    const transfer = transferOn([a]);
    const opened = await transfer.open(0);
    const full = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    const err = await rejection(opened.body.pipeTo({ write: () => Promise.reject(full) }));
    expect(err).toBe(full);
    expect(a.health.lastError).toBeUndefined();
    expect(transfer.excluded.size).toBe(0);
  });

  it('an aborted transfer rejects with the abort reason and blames nobody', async () => {
    const a = endpoint('a', [whole({ chunks: [blob.subarray(0, 10)], then: 'hang' })]);
    const controller = new AbortController();
    const transfer = transferOn([a], { signal: controller.signal });
    const opened = await transfer.open(0);
    let received = 0;
    let gotFirst!: () => void;
    const first = new Promise<void>((resolve) => { gotFirst = resolve; });
    const piping = rejection(opened.body.pipeTo({ write: (c) => { received += c.length; gotFirst(); return undefined; } }));
    await first;
    const reason = new Error('fill timed out');
    controller.abort(reason);
    expect(await piping).toBe(reason);
    expect(received).toBe(10);
    expect(a.health.lastError).toBeUndefined();
    expect(transfer.excluded.size).toBe(0);
  });
});

describe('reportCorrupt', () => {
  it('counts against health and excludes the endpoint, here and in a retry given `excluded`', async () => {
    const a = endpoint('a', [whole()]);
    const b = endpoint('b', [whole()]);
    const transfer = transferOn([a, b]);
    const opened = await transfer.open(0);
    await opened.body.pipeTo(collector());
    opened.reportCorrupt();
    expect(a.health.lastError).toBe('blob digest mismatch');
    const retry = transferOn([a, b], { exclude: transfer.excluded });
    expect((await retry.open(0)).endpoint).toBe('b');
    expect(a.requests).toHaveLength(1);
  });
});

describe('no endpoint left: the error a client gets', () => {
  const code = (err: unknown) => { const e = err as OciError; return { status: e.status, code: e.code }; };

  it('every endpoint said 404 → 404 BLOB_UNKNOWN, whatever failureStatus says', async () => {
    for (const failureStatus of [503, 504, 404] as const) {
      const err = await rejection(transferOn([endpoint('a', [{ status: 404 }]), endpoint('b', [{ status: 404 }])], { failureStatus }).open(0));
      expect(err).toBeInstanceOf(OciError);
      expect(code(err)).toEqual({ status: 404, code: 'BLOB_UNKNOWN' });
    }
  });

  it('an outage → failureStatus (503 UNAVAILABLE by default, 504, or 404 for old containerd), naming every attempt', async () => {
    const endpoints = () => [endpoint('a', [{ status: 404 }]), endpoint('b', [{ status: 502 }])];
    const err = await rejection(transferOn(endpoints()).open(0));
    expect(code(err)).toEqual({ status: 503, code: 'UNAVAILABLE' });
    expect((err as OciError).detail).toEqual({ registry: 'docker.io', attempts: ['a: HTTP 404', 'b: HTTP 502'] });
    expect(code(await rejection(transferOn(endpoints(), { failureStatus: 504 }).open(0)))).toEqual({ status: 504, code: 'UNAVAILABLE' });
    expect(code(await rejection(transferOn(endpoints(), { failureStatus: 404 }).open(0)))).toEqual({ status: 404, code: 'BLOB_UNKNOWN' });
  });

  it('after a break-off, a remainder that says 404 is an outage, not a 404; the detail names the break-off', async () => {
    const a = endpoint('a', [whole({ chunks: [blob.subarray(0, 100)], then: 'reset' })]);
    const b = endpoint('b', [{ status: 404 }]);
    const transfer = transferOn([a, b]);
    await expect((await transfer.open(0)).body.pipeTo(collector())).rejects.toBeInstanceOf(BrokeOff);
    const err = await rejection(transfer.open(100));
    expect(code(err)).toEqual({ status: 503, code: 'UNAVAILABLE' });
    expect((err as OciError).detail).toEqual({ registry: 'docker.io', attempts: ['a: HTTP 200', expect.stringMatching(/^a: broke off at byte 100: /), 'b: HTTP 404'] });
  });
});

// BlobFill with a scripted upstream: readers never get the final byte before the digest is verified, a corrupt
// transfer fails every reader and leaves nothing, and a broken body resumes on the next endpoint from its offset.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobFill } from '../../../src/cache/fill.js';
import { FillReader } from '../../../src/cache/fill-reader.js';
import { FsBlobStore } from '../../../src/cache/fs-store.js';
import type { FetchRequest, MirrorUpstream } from '../../../src/upstream/fallthrough.js';
import { makeTmpDir, removeTmpDir } from '../../helpers/tmp.js';

const data = randomBytes(200_000);
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
const tick = () => new Promise((r) => setTimeout(r, 10));
/** Waits for a condition the fill reaches asynchronously (file writes), without a fixed sleep. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await tick();
  }
}

interface Scripted { name: string; status: number; headers: Record<string, string>; body: PassThrough; failures: string[]; requests: FetchRequest[] }

/** A mirror whose endpoints answer in order with bodies the test writes by hand. */
function scriptedMirror(answers: Omit<Scripted, 'failures' | 'requests'>[]): { mirror: MirrorUpstream; endpoints: Scripted[] } {
  const endpoints = answers.map((a) => ({ ...a, failures: [] as string[], requests: [] as FetchRequest[] }));
  const handles = endpoints.map((e) => ({
    client: { name: e.name },
    health: { recordFailure: (reason: string) => e.failures.push(reason), recordSuccess: () => undefined },
    rewrites: false,
  }));
  const mirror = {
    async fetch(req: FetchRequest) {
      const i = handles.findIndex((h) => !req.skip?.has(h as never));
      if (i < 0) throw new Error('no endpoint left');
      const e = endpoints[i]!;
      e.requests.push(req);
      const body = Object.assign(e.body, { dump: async () => { e.body.resume(); } });
      return { res: { status: e.status, headers: e.headers, body, authAttempted: false }, endpoint: handles[i], attempts: [] };
    },
  };
  return { mirror: mirror as unknown as MirrorUpstream, endpoints };
}

async function readAll(reader: FillReader): Promise<{ data: Buffer; error?: Error }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of reader) chunks.push(c as Buffer);
    return { data: Buffer.concat(chunks) };
  } catch (error) {
    return { data: Buffer.concat(chunks), error: error as Error };
  }
}

describe('BlobFill', () => {
  let dir: string;
  let store: FsBlobStore;
  beforeEach(async () => {
    dir = makeTmpDir('ocimirror-fill-');
    store = new FsBlobStore(dir);
    await store.init();
  });
  // Readers end once the digest is verified; fsync and rename finish behind them, so wait for every fill.
  let fills: BlobFill[] = [];
  afterEach(async () => {
    await until(() => fills.every((f) => f.state !== 'running'));
    fills = [];
    await removeTmpDir(dir);
  });

  const fillWith = (mirror: MirrorUpstream) => {
    const fill = new BlobFill({ digest, repo: 'library/x', mirror, store, log: pino({ level: 'silent' }), fillTimeoutMs: 10_000, failureStatus: 503 }).start();
    fills.push(fill);
    return fill;
  };
  const whole = { 'content-length': String(data.length) };

  it('holds back the final byte until the digest is verified, then ends every reader cleanly', async () => {
    const { mirror, endpoints: [one] } = scriptedMirror([{ name: 'one', status: 200, headers: whole, body: new PassThrough() }]);
    const fill = fillWith(mirror);
    expect(await fill.whenSized()).toBe(data.length);
    const early = readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    one!.body.write(data);
    await until(() => fill.written === data.length);
    // Every byte has arrived, but the upstream body has not ended: nothing is verified yet.
    expect(fill.written).toBe(data.length);
    expect(fill.readable).toBe(data.length - 1);
    const tail = readAll(new FillReader(fill, data.length - 10, data.length - 1, fill.acquire()));
    await tick();
    expect(fill.state).toBe('running');
    one!.body.end();
    const [a, b] = await Promise.all([early, tail]);
    // Readers end once the digest matched; making the file durable may still be under way.
    expect(fill.verified).toBe(true);
    if (fill.state !== 'done') await new Promise((r) => fill.once('done', r));
    expect(a.error).toBeUndefined();
    expect(a.data.equals(data)).toBe(true);
    expect(b.data.equals(data.subarray(-10))).toBe(true);
    expect((await store.readAll(digest))?.equals(data)).toBe(true);
  });

  it('a corrupt transfer fails every reader before its last byte, stores nothing and names the endpoint to skip', async () => {
    const corrupt = Buffer.from(data);
    corrupt[100] = corrupt[100]! ^ 0xff;
    const { mirror, endpoints: [one] } = scriptedMirror([{ name: 'one', status: 200, headers: whole, body: new PassThrough() }]);
    const fill = fillWith(mirror);
    await fill.whenSized();
    const reader = readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    one!.body.end(corrupt);
    const got = await reader;
    expect(got.error?.message).toMatch(/do not match the digest/);
    expect(got.data.length).toBeLessThan(data.length);
    expect(fill.state).toBe('failed');
    expect(fill.retrySkip?.size).toBe(1);
    expect(one!.failures).toEqual(['blob digest mismatch']);
    expect(await store.stat(digest)).toBeUndefined();
    expect(await store.recover()).toBe(0);
  });

  it('a body that breaks off resumes on the next endpoint from its offset; a reader sees one stream', async () => {
    const cut = 70_000;
    const { mirror, endpoints: [one, two] } = scriptedMirror([
      { name: 'one', status: 200, headers: whole, body: new PassThrough() },
      { name: 'two', status: 206, headers: { 'content-range': `bytes ${cut}-${data.length - 1}/${data.length}`, 'content-length': String(data.length - cut) }, body: new PassThrough() },
    ]);
    const fill = fillWith(mirror);
    await fill.whenSized();
    const reader = readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    one!.body.write(data.subarray(0, cut));
    await tick();
    one!.body.destroy(new Error('socket reset'));
    await tick();
    two!.body.end(data.subarray(cut));
    const got = await reader;
    expect(got.error).toBeUndefined();
    expect(got.data.equals(data)).toBe(true);
    expect(two!.requests.map((r) => r.headers.range)).toEqual([`bytes=${cut}-`]);
    expect(one!.failures).toHaveLength(1);
  });

  it('a resumed endpoint that answers with another offset is not trusted', async () => {
    const cut = 70_000;
    const { mirror, endpoints: [one, two, three] } = scriptedMirror([
      { name: 'one', status: 200, headers: whole, body: new PassThrough() },
      { name: 'two', status: 206, headers: { 'content-range': `bytes 0-${data.length - 1}/${data.length}` }, body: new PassThrough() },
      { name: 'three', status: 200, headers: whole, body: new PassThrough() },
    ]);
    const fill = fillWith(mirror);
    await fill.whenSized();
    const reader = readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    one!.body.write(data.subarray(0, cut));
    await tick();
    one!.body.destroy(new Error('socket reset'));
    three!.body.end(data);
    const got = await reader;
    expect(got.error).toBeUndefined();
    expect(got.data.equals(data)).toBe(true);
    expect(two!.requests).toHaveLength(1);
    expect(three!.requests.map((r) => r.headers.range)).toEqual([`bytes=${cut}-`]);
  });

  it('a failed local write (disk full) fails the fill with 500 and does not blame the endpoint', async () => {
    const { mirror, endpoints: [one, two] } = scriptedMirror([
      { name: 'one', status: 200, headers: whole, body: new PassThrough() },
      { name: 'two', status: 200, headers: whole, body: new PassThrough() },
    ]);
    const full = Object.create(store) as FsBlobStore;
    full.createWriter = async (d: string) => {
      const w = await store.createWriter(d);
      w.write = async () => { throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }); };
      return w;
    };
    const fill = new BlobFill({ digest, repo: 'library/x', mirror, store: full, log: pino({ level: 'silent' }), fillTimeoutMs: 10_000, failureStatus: 503 }).start();
    fills.push(fill);
    await fill.whenSized();
    one!.body.end(data);
    await until(() => fill.state === 'failed');
    expect(fill.error).toMatchObject({ status: 500 });
    expect(one!.failures).toEqual([]);
    expect(two!.requests).toHaveLength(0);
    expect(await store.stat(digest)).toBeUndefined();
  });

  it('an upstream that sends no Content-Length: clients get the blob once it is verified', async () => {
    const { mirror, endpoints: [one] } = scriptedMirror([{ name: 'one', status: 200, headers: {}, body: new PassThrough() }]);
    const fill = fillWith(mirror);
    const sized = fill.whenSized();
    one!.body.end(data);
    expect(await sized).toBe(data.length);
    expect(fill.state).toBe('done');
    const got = await readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    expect(got.data.equals(data)).toBe(true);
  });
});

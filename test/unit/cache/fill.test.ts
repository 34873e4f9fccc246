// BlobFill against a scripted blob source (real body delivery, fall-through by script): readers never get the final
// byte before the digest is verified, a corrupt transfer fails every reader, leaves nothing and reports the endpoint,
// a body that breaks off is opened again at the fill's offset, and a local write failure blames nobody upstream.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobFill } from '../../../src/cache/fill.js';
import { FillReader } from '../../../src/cache/fill-reader.js';
import { FsBlobStore } from '../../../src/cache/fs-store.js';
import { OciError } from '../../../src/oci/errors.js';
import { BrokeOff, ResponseBody } from '../../../src/upstream/blob-body.js';
import type { BlobSource, BlobTransfer, OpenedBlob } from '../../../src/upstream/blob-source.js';
import type { MirrorUpstream, UpstreamEndpoint } from '../../../src/upstream/fallthrough.js';
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

interface Answer { endpoint: string; size?: number; body: PassThrough }

/**
 * A blob source whose endpoints answer in order with bodies the test writes by hand; what the fill reports back
 * (offsets opened, endpoints that broke off or sent corrupt bytes) is recorded in `events`.
 */
function scriptedSource(answers: Answer[]): { source: BlobSource; events: string[]; transfers: BlobTransfer[] } {
  const events: string[] = [];
  const transfers: BlobTransfer[] = [];
  const source: BlobSource = {
    transfer(req) {
      const excluded = new Set(req.exclude);
      const attempts: { endpoint: string; status?: number; error?: string; ms: number }[] = [];
      const transfer: BlobTransfer = {
        attempts, excluded,
        async open(offset): Promise<OpenedBlob> {
          events.push(`open ${offset}`);
          const answer = answers.shift();
          if (!answer) throw new OciError('UNAVAILABLE', { attempts: attempts.map((a) => a.endpoint) }, { status: 503 });
          const { endpoint, size } = answer;
          attempts.push({ endpoint, status: offset > 0 ? 206 : 200, ms: 1 });
          const upstreamBody = Object.assign(answer.body, { dump: async () => { answer.body.resume(); } });
          return {
            size, start: offset, endpoint, attempts: attempts.slice(-1),
            body: new ResponseBody(upstreamBody, offset, 0, size, req.signal, (at, err) => {
              events.push(`${endpoint} broke off at ${at}`);
              excluded.add(endpoint as unknown as UpstreamEndpoint);
              return new BrokeOff(endpoint, at, String(err), { cause: err });
            }),
            reportCorrupt: () => {
              events.push(`${endpoint} corrupt`);
              excluded.add(endpoint as unknown as UpstreamEndpoint);
            },
          };
        },
      };
      transfers.push(transfer);
      return transfer;
    },
  };
  return { source, events, transfers };
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

  const fillWith = (source: BlobSource, into: FsBlobStore = store) => {
    const fill = new BlobFill({ digest, repo: 'library/x', mirror: {} as MirrorUpstream, source, store: into, log: pino({ level: 'silent' }), fillTimeoutMs: 10_000 }).start();
    fills.push(fill);
    return fill;
  };
  const size = data.length;

  it('holds back the final byte until the digest is verified, then ends every reader cleanly', async () => {
    const one = new PassThrough();
    const fill = fillWith(scriptedSource([{ endpoint: 'one', size, body: one }]).source);
    expect(await fill.whenSized()).toBe(data.length);
    const early = readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    one.write(data);
    await until(() => fill.received === data.length);
    // Every byte has arrived, but the upstream body has not ended: nothing is verified yet.
    expect(fill.readable).toBe(data.length - 1);
    const tail = readAll(new FillReader(fill, data.length - 10, data.length - 1, fill.acquire()));
    await tick();
    expect(fill.state).toBe('running');
    one.end();
    const [a, b] = await Promise.all([early, tail]);
    // Readers end once the digest matched; making the file durable may still be under way.
    expect(fill.verified).toBe(true);
    if (fill.state !== 'done') await new Promise((r) => fill.once('done', r));
    expect(a.error).toBeUndefined();
    expect(a.data.equals(data)).toBe(true);
    expect(b.data.equals(data.subarray(-10))).toBe(true);
    expect((await store.readAll(digest))?.equals(data)).toBe(true);
  });

  it('a corrupt transfer fails every reader before its last byte, stores nothing and reports the endpoint', async () => {
    const corrupt = Buffer.from(data);
    corrupt[100] = corrupt[100]! ^ 0xff;
    const one = new PassThrough();
    const { source, events, transfers } = scriptedSource([{ endpoint: 'one', size, body: one }]);
    const fill = fillWith(source);
    await fill.whenSized();
    const reader = readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    one.end(corrupt);
    const got = await reader;
    expect(got.error?.message).toMatch(/do not match the digest/);
    expect(got.data.length).toBeLessThan(data.length);
    expect(fill.state).toBe('failed');
    expect(fill.error).toMatchObject({ code: 'DIGEST_INVALID', status: 502 });
    expect(events).toEqual(['open 0', 'one corrupt']);
    // A retry elsewhere leaves out what this transfer excluded.
    expect(fill.retryExclude).toBe(transfers[0]!.excluded);
    expect([...fill.retryExclude!]).toEqual(['one']);
    expect(await store.stat(digest)).toBeUndefined();
    expect(await store.recover()).toBe(0);
  });

  it('a body that breaks off is opened again at what the fill has; a reader sees one stream', async () => {
    const cut = 70_000;
    const [one, two] = [new PassThrough(), new PassThrough()];
    const { source, events, transfers } = scriptedSource([{ endpoint: 'one', size, body: one }, { endpoint: 'two', size, body: two }]);
    const fill = fillWith(source);
    await fill.whenSized();
    const reader = readAll(new FillReader(fill, 0, data.length - 1, fill.acquire()));
    one.write(data.subarray(0, cut));
    await until(() => fill.received === cut);
    one.destroy(new Error('socket reset'));
    await until(() => events.length === 3);
    two.end(data.subarray(cut));
    const got = await reader;
    expect(got.error).toBeUndefined();
    expect(got.data.equals(data)).toBe(true);
    expect(events).toEqual(['open 0', `one broke off at ${cut}`, `open ${cut}`]);
    expect(fill.endpoint).toBe('two');
    // One attempt list for the fill's whole life, as the metrics count it.
    expect(fill.attempts).toBe(transfers[0]!.attempts);
    expect(fill.attempts.map((a) => a.endpoint)).toEqual(['one', 'two']);
  });

  it('a failed local write (disk full) fails the fill with 500 and blames no endpoint', async () => {
    const [one, two] = [new PassThrough(), new PassThrough()];
    const { source, events } = scriptedSource([{ endpoint: 'one', size, body: one }, { endpoint: 'two', size, body: two }]);
    const full = Object.create(store) as FsBlobStore;
    full.createWriter = async (d: string) => {
      const w = await store.createWriter(d);
      const noSpace = async () => { throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }); };
      w.write = noSpace;
      w.writev = noSpace;
      return w;
    };
    const fill = fillWith(source, full);
    await fill.whenSized();
    one.end(data);
    await until(() => fill.state === 'failed');
    expect(fill.error).toMatchObject({ status: 500 });
    expect(events).toEqual(['open 0']);
    expect(await store.stat(digest)).toBeUndefined();
  });

  it('when the source has no endpoint left, the fill fails with its error and leaves no temp file', async () => {
    const fill = fillWith(scriptedSource([]).source);
    await expect(fill.whenSized()).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(fill.state).toBe('failed');
    expect(await store.recover()).toBe(0);
  });

  it('a fill that ended keeps none of its bytes in memory for a client still behind; that client reads the file', async () => {
    const big = randomBytes(12 * 1024 * 1024);
    const bigDigest = `sha256:${createHash('sha256').update(big).digest('hex')}`;
    const body = new PassThrough();
    const fill = new BlobFill({
      digest: bigDigest, repo: 'library/x', mirror: {} as MirrorUpstream, source: scriptedSource([{ endpoint: 'one', size: big.length, body }]).source,
      store, log: pino({ level: 'silent' }), fillTimeoutMs: 10_000,
    }).start();
    fills.push(fill);
    await fill.whenSized();
    const reader = new FillReader(fill, 0, big.length - 1, fill.acquire());
    // The client takes one chunk, then stops reading (a stalled client).
    const taken = new Promise<Buffer>((resolve) => reader.once('data', (c: Buffer) => { reader.pause(); resolve(c); }));
    body.end(big);
    const first = await taken;
    await until(() => fill.state === 'done');
    // Issue 8 rule 1: the stalled client pins nothing of the fill — neither the tail nor where it stands.
    expect([fill.peek(big.length - 1, 1), fill.peek(first.length, 1)]).toEqual([undefined, undefined]);
    const rest: Buffer[] = [];
    reader.on('data', (c: Buffer) => rest.push(c));
    reader.resume();
    await new Promise((resolve) => reader.once('end', resolve));
    expect(Buffer.concat([first, ...rest]).equals(big)).toBe(true);
  });

  it('an upstream that sends no Content-Length: clients get the blob once it is verified', async () => {
    const one = new PassThrough();
    const fill = fillWith(scriptedSource([{ endpoint: 'one', body: one }]).source);
    // A client joins first (as BlobCache does: it acquires before it waits for the size).
    const release = fill.acquire();
    const sized = fill.whenSized();
    one.end(data);
    expect(await sized).toBe(data.length);
    expect(fill.state).toBe('done');
    const got = await readAll(new FillReader(fill, 0, data.length - 1, release));
    expect(got.data.equals(data)).toBe(true);
  });
});

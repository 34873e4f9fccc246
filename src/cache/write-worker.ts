// Hashing and writing a filesystem blob off the main thread. On a cold pull SHA-256 was a quarter of the main
// thread's time and each file write a thread-pool round trip; now a worker thread does both (hash, then a plain
// pwrite loop), while the main thread only copies each batch into a buffer it hands over (transferred, not
// cloned) and gets back with the answer. Up to four such threads (one per core beyond the first); each writer
// stays on one, in order.
import { availableParallelism } from 'node:os';
import { createHash, type Hash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** One message's worth of bytes: a batch of the fill's group commit (up to about 2 MiB) fits in one. */
const BATCH_BYTES = 2 * 1024 * 1024;
/** Batch buffers kept for the next writes instead of allocating one per batch (one per concurrent large fill). */
const POOL_MAX = 4;

// The worker's code, plain CommonJS (the thread starts from source text, so it runs the same under tsc and tests).
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { writeSync } = require('node:fs');
const writers = new Map();
parentPort.on('message', (m) => {
  const reply = (fields) => parentPort.postMessage({ seq: m.seq, ...fields });
  try {
    if (m.op === 'open') { writers.set(m.id, { fd: m.fd, hash: createHash(m.algorithm) }); return reply({}); }
    const w = writers.get(m.id);
    if (!w) throw new Error('unknown writer ' + m.id);
    if (m.op === 'write') {
      const bytes = Buffer.from(m.buffer, 0, m.length);
      w.hash.update(bytes);
      for (let off = 0; off < m.length;) off += writeSync(w.fd, bytes, off, m.length - off, m.position + off);
      // The buffer goes back with the answer, for the next batch.
      return parentPort.postMessage({ seq: m.seq, buffer: m.buffer }, [m.buffer]);
    }
    writers.delete(m.id);
    return reply(m.op === 'digest' ? { hex: w.hash.digest('hex') } : {});
  } catch (err) {
    reply({ error: String(err && err.message), code: err && err.code });
  }
});
`;

interface Reply { seq: number; hex?: string; buffer?: ArrayBuffer; error?: string; code?: string }
type Call = { op: 'open'; fd: number; algorithm: string } | { op: 'write'; length: number; position: number; buffer: ArrayBuffer } | { op: 'digest' | 'release' };

class WriteThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  private seq = 0;

  call(id: number, msg: Call): Promise<Reply> {
    const worker = this.worker ?? this.start();
    const seq = ++this.seq;
    // Awaited replies keep the process alive (a CLI import may wait for nothing else); an idle thread does not.
    if (this.pending.size === 0) worker.ref();
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      worker.postMessage({ ...msg, id, seq }, msg.op === 'write' ? [msg.buffer] : []);
    });
  }

  private start(): Worker {
    // No inherited node flags: a parent started with --input-type=module or a loader would break the plain source.
    const worker = new Worker(THREAD_SOURCE, { eval: true, name: 'ocimirror-write', execArgv: [] });
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.seq);
      this.pending.delete(r.seq);
      if (this.pending.size === 0) worker.unref();
      if (!p) return;
      if (r.error === undefined) p.resolve(r);
      else p.reject(Object.assign(new Error(r.error), r.code ? { code: r.code } : {}));
    });
    // A dead thread fails what it was doing; the next writer starts a new one.
    const die = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`write worker exited with code ${code}`)));
    // Idle, the thread must not keep the process alive (after the listeners: adding one refs the port again).
    if (this.pending.size === 0) worker.unref();
    this.worker = worker;
    return worker;
  }
}

/**
 * The same work on the calling thread, for a command-line export or import: nothing else runs in that process
 * while it hashes, and a worker thread is ~10 MB of resident memory those commands are measured without.
 */
class InlineThread {
  private readonly writers = new Map<number, { fd: number; hash: Hash }>();

  async call(id: number, msg: Call): Promise<Reply> {
    if (msg.op === 'open') { this.writers.set(id, { fd: msg.fd, hash: createHash(msg.algorithm) }); return { seq: 0 }; }
    const w = this.writers.get(id);
    if (!w) throw new Error(`unknown writer ${id}`);
    if (msg.op === 'write') {
      const bytes = Buffer.from(msg.buffer, 0, msg.length);
      w.hash.update(bytes);
      for (let off = 0; off < msg.length;) off += writeSync(w.fd, bytes, off, msg.length - off, msg.position + off);
      return { seq: 0, buffer: msg.buffer };
    }
    this.writers.delete(id);
    return msg.op === 'digest' ? { seq: 0, hex: w.hash.digest('hex') } : { seq: 0 };
  }
}

const threads = Array.from({ length: Math.max(1, Math.min(4, availableParallelism() - 1)) }, () => new WriteThread());
const pool: ArrayBuffer[] = [];
const takeBuffer = () => pool.pop() ?? new ArrayBuffer(BATCH_BYTES);
const giveBuffer = (buffer: ArrayBuffer | undefined) => { if (buffer?.byteLength === BATCH_BYTES && pool.length < POOL_MAX) pool.push(buffer); };
let nextId = 0;
const inlineThread = new InlineThread();

/** One file being written and hashed by a worker thread; writes are applied in the order they were called. */
export class OffThreadWriter {
  private readonly id = ++nextId;
  private readonly thread: Pick<WriteThread, 'call'>;
  private chain: Promise<unknown>;
  private ended = false;

  /** `fd` stays open, and owned by the caller, until digest() or release() has resolved. */
  constructor(fd: number, algorithm: string, inline = false) {
    this.thread = inline ? inlineThread : threads[this.id % threads.length] as WriteThread;
    this.chain = this.thread.call(this.id, { op: 'open', fd, algorithm });
    // A failed open surfaces in the first write or the digest, not as an unhandled rejection.
    this.chain.catch(() => undefined);
  }

  /** Writes the chunks back to back at `position` (in pieces of BATCH_BYTES). */
  write(chunks: readonly Buffer[], position: number): Promise<void> {
    if (this.ended) return Promise.reject(new Error('write after the writer ended'));
    const run = async () => {
      await this.chain.catch(() => undefined);
      let at = position;
      let i = 0;
      let off = 0;
      while (i < chunks.length) {
        const buffer = takeBuffer();
        const view = Buffer.from(buffer);
        let length = 0;
        while (i < chunks.length && length < BATCH_BYTES) {
          const chunk = chunks[i] as Buffer;
          const n = chunk.copy(view, length, off);
          length += n;
          off += n;
          if (off === chunk.length) { i++; off = 0; }
        }
        if (length === 0) { giveBuffer(buffer); continue; }
        giveBuffer((await this.thread.call(this.id, { op: 'write', length, position: at, buffer })).buffer);
        at += length;
      }
    };
    const done = run();
    this.chain = done;
    return done;
  }

  /** The hex digest of everything written; the thread then forgets the file. */
  async digest(): Promise<string> {
    const r = await this.end('digest');
    return r?.hex ?? '';
  }

  /** The thread forgets the file without a digest (abort): resolve before closing `fd`. */
  async release(): Promise<void> {
    await this.end('release').catch(() => undefined);
  }

  private async end(op: 'digest' | 'release'): Promise<Reply | undefined> {
    if (this.ended) return undefined;
    this.ended = true;
    await this.chain.catch(() => undefined);
    return this.thread.call(this.id, { op });
  }
}

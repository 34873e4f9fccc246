// Writes an archive as a tar stream (gzip-compressed when asked), one member at a time with backpressure all the
// way to the disk: memory stays constant whatever the members' sizes. A file is written beside its final name
// and renamed into place only when complete, so a failed export never leaves a half archive under that name.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export type OutputCompression = 'gzip' | 'none';

/** Fixed member times: the same images give the same archive bytes. */
const MTIME = new Date(0);

export class TarOutput {
  private readonly pack = tar.pack();
  private readonly done: Promise<void>;
  private failed: unknown;
  bytes = 0;

  private constructor(dest: Writable, private readonly tmp: string | undefined, private readonly final: string | undefined, compression: OutputCompression) {
    const counter = async function* (this: TarOutput, src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const c of src) { this.bytes += c.length; yield c; }
    }.bind(this);
    // Layers are compressed already: gzip level 1 costs least for the little there is left to gain.
    const stages = compression === 'gzip' ? [this.pack, createGzip({ level: 1 }), counter] as const : [this.pack, counter] as const;
    this.done = (pipeline as (...s: unknown[]) => Promise<void>)(...stages, dest, dest === process.stdout ? { end: false } : {});
    this.done.catch((e: unknown) => { this.failed = e; });
  }

  /** An archive at `file` ("-" for standard output). */
  static create(file: string, compression: OutputCompression): TarOutput {
    if (file === '-') return new TarOutput(process.stdout, undefined, undefined, compression);
    const tmp = `${file}.partial-${randomBytes(4).toString('hex')}`;
    return new TarOutput(createWriteStream(tmp, { mode: 0o644 }), tmp, file, compression);
  }

  async addBuffer(name: string, data: Buffer): Promise<void> {
    await new Promise<void>((resolve, reject) => this.pack.entry({ name, size: data.length, mode: 0o644, mtime: MTIME }, data, (err) => (err ? reject(err) : resolve())));
  }

  /** Streams a member of known size; the source must yield exactly `size` bytes. `onChunk` sees each chunk written. */
  async addStream(name: string, size: number, source: AsyncIterable<Buffer>, onChunk?: (n: number) => void): Promise<void> {
    let entryError: Error | undefined;
    const entry = this.pack.entry({ name, size, mode: 0o644, mtime: MTIME }, (err) => { if (err) entryError = err; });
    const finished = new Promise<void>((resolve, reject) => entry.once('finish', resolve).once('error', reject).once('close', () => (entryError ? reject(entryError) : resolve())));
    for await (const chunk of source) {
      if (this.failed) throw this.failed;
      onChunk?.(chunk.length);
      if (!entry.write(chunk)) await Promise.race([once(entry, 'drain'), finished]);
    }
    entry.end(undefined);
    await finished;
    if (entryError) throw entryError;
  }

  /** Ends the archive, waits until every byte is written, and puts the file in place. */
  async finish(): Promise<void> {
    this.pack.finalize();
    await this.done;
    if (this.failed) throw this.failed;
    if (this.tmp && this.final) await rename(this.tmp, this.final);
  }

  /** Stops writing and removes the unfinished file. */
  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    if (this.tmp) await rm(this.tmp, { force: true });
  }
}

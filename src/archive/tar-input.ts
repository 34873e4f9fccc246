// Reads an image archive as a stream of tar members, whatever its compression (gzip, zstd or none, told by its
// first bytes): constant memory, one member at a time. A damaged or cut-short archive is an ArchiveError that
// names the member being read when it happened.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { ArchiveError } from './archive-error.js';
import { normaliseEntryName } from './entry-names.js';
import { zstdDecompress } from './zstd.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface ArchiveMember {
  /** Normalised member name (see normaliseEntryName). */
  name: string;
  type: 'file' | 'symlink' | 'directory' | 'other';
  size: number;
  linkname?: string;
  /** The member's bytes; whatever the reader leaves unread is skipped. */
  body: AsyncIterable<Buffer>;
}

export async function detectCompression(file: string): Promise<Compression> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await handle.close();
  }
}

/** Turns a stream error into what a person can act on, naming the member it happened in. */
export function describeReadError(err: unknown, member: string | undefined, after: string | undefined): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const msg = (err as Error).message ?? String(err);
  const cut = /unexpected end|premature|EOF|truncated/i.test(msg);
  const problem = cut ? 'the archive is cut short inside this entry (truncated file?)' : `cannot read the archive here (${msg})`;
  if (member !== undefined) return new ArchiveError(member, problem, { cause: err });
  const where = after === undefined ? 'before its first entry' : `after entry ${after}`;
  return new ArchiveError(undefined, cut ? `the archive is cut short ${where} (truncated file?)` : `cannot read the archive ${where}: ${msg}`, { cause: err });
}

/** A member's bytes; a read error (in the member, or in the compressed stream under it) names the member. */
async function* guarded(body: AsyncIterable<Buffer>, member: string, failure: () => unknown): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body) yield chunk;
  } catch (e) {
    throw describeReadError(failure() ?? e, member, undefined);
  }
}

/** Every member of the archive, in order. Members whose names climb out of the archive are refused. */
export async function* readArchive(file: string): AsyncGenerator<ArchiveMember> {
  const compression = await detectCompression(file);
  const extract = tar.extract();
  const source = createReadStream(file, { highWaterMark: 256 * 1024 });
  let failure: unknown;
  const fed = (compression === 'gzip' ? pipeline(source, createGunzip(), extract)
    : compression === 'zstd' ? pipeline(source, zstdDecompress, extract)
      : pipeline(source, extract)).catch((e: unknown) => { failure = e; });
  let current: string | undefined;
  let last: string | undefined;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      current = h.name;
      const name = normaliseEntryName(h.name);
      // "./" (tar -C dir .) names the archive's own top: nothing to read there.
      if (name === undefined && /^[./]*$/.test(h.name)) { entry.resume(); continue; }
      if (name === undefined) throw new ArchiveError(h.name, 'member name leaves the archive or is not a path');
      const type = h.type === 'file' || h.type === 'contiguous-file' ? 'file' : h.type === 'symlink' ? 'symlink' : h.type === 'directory' ? 'directory' : 'other';
      yield { name, type, size: h.size ?? 0, ...(h.linkname ? { linkname: h.linkname } : {}), body: guarded(entry as AsyncIterable<Buffer>, h.name, () => failure) };
      // Skips whatever the reader left unread; the next member follows once this one is drained.
      entry.resume();
      last = current;
      current = undefined;
    }
  } catch (e) {
    source.destroy();
    throw describeReadError(failure ?? e, current, last);
  }
  await fed;
  if (failure) throw describeReadError(failure, undefined, last);
}

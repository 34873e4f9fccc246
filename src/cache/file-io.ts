// Positional reads and writes that finish the job: a FileHandle may write or read fewer bytes than asked.
import type { FileHandle } from 'node:fs/promises';

export async function writeFully(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

/** Exactly `length` bytes at `position`; throws if the file ends first. */
export function readFully(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  return readInto(handle, Buffer.allocUnsafe(length), position, length);
}

/** Exactly `length` bytes at `position` into the start of `buf`; throws if the file ends first. */
export async function readInto(handle: FileHandle, buf: Buffer, position: number, length: number): Promise<Buffer> {
  let off = 0;
  while (off < length) {
    const { bytesRead } = await handle.read(buf, off, length - off, position + off);
    if (bytesRead === 0) throw new Error(`file ended at byte ${position + off} of ${position + length}`);
    off += bytesRead;
  }
  return buf.subarray(0, length);
}

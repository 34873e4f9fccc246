// OffThreadWriter (on its worker thread, and inline): the thread writes every byte where it belongs and hashes them in order, whatever the
// chunk sizes (a chunk larger than the shared buffer included); its write errors reach the caller with their code.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OffThreadWriter } from '../../../src/cache/write-worker.js';
import { makeTmpDir, removeTmpDir } from '../../helpers/tmp.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(() => { dir = makeTmpDir('ocimirror-write-worker-'); });
afterAll(async () => { await removeTmpDir(dir); });

// First in the file, while no batch buffer has been pooled: small writes get buffers of their own size.
describe('OffThreadWriter, small writes with no pooled buffer', () => {
  it('writes a few bytes with empty chunks around them, and a write of nothing but empty chunks', async () => {
    const data = randomBytes(1000);
    const file = join(dir, 'small');
    const handle = await open(file, 'w+');
    const writer = new OffThreadWriter(handle.fd, 'sha256');
    await writer.write([Buffer.alloc(0), data.subarray(0, 600), Buffer.alloc(0)], 0);
    await writer.write([Buffer.alloc(0)], 600);
    await writer.write([data.subarray(600, 601), data.subarray(601), Buffer.alloc(0)], 600);
    expect(await writer.digest()).toBe(createHash('sha256').update(data).digest('hex'));
    await handle.close();
    expect(readFileSync(file).equals(data)).toBe(true);
  });
});

describe.each([['on its worker thread', false], ['inline (command-line export and import)', true]])('OffThreadWriter %s', (_, inline) => {
  it('writes and hashes chunks of any size in call order, including one larger than its shared buffer', async () => {
    const data = randomBytes(7 * MiB + 4321);
    const cuts = [0, 1, 65_536, 65_536 + 3 * MiB + 7, 5 * MiB, 5 * MiB + 1, data.length];
    const file = join(dir, 'a');
    const handle = await open(file, 'w+');
    const writer = new OffThreadWriter(handle.fd, 'sha256', inline);
    const writes: Promise<void>[] = [];
    let position = 0;
    for (let i = 1; i < cuts.length; i++) {
      // Two chunks per call, the second sometimes empty: the copy loop must not stall on either.
      const piece = data.subarray(cuts[i - 1], cuts[i]);
      const half = Math.floor(piece.length / 2);
      writes.push(writer.write([piece.subarray(0, half), piece.subarray(half)], position));
      position += piece.length;
    }
    await Promise.all(writes);
    expect(await writer.digest()).toBe(createHash('sha256').update(data).digest('hex'));
    await handle.close();
    expect(readFileSync(file).equals(data)).toBe(true);
    await expect(writer.write([Buffer.from('late')], position)).rejects.toThrow(/after the writer ended/);
  });

  it('a write the worker cannot do rejects with the error code it got', async () => {
    const file = join(dir, 'readonly');
    writeFileSync(file, '');
    const handle = await open(file, 'r');
    const writer = new OffThreadWriter(handle.fd, 'sha256', inline);
    await expect(writer.write([Buffer.from('x')], 0)).rejects.toMatchObject({ code: 'EBADF' });
    await writer.release();
    await handle.close();
  });
});

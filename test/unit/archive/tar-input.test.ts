// readArchive on tar streams as tools write them (plain, gzip, zstd made by the zstd tool) and on broken ones:
// it yields the members with normalised names, or throws an ArchiveError that names where it broke — never
// another exception, never a member whose name climbs out of the archive.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ArchiveError } from '../../../src/archive/archive-error.js';
import { detectCompression, readArchive } from '../../../src/archive/tar-input.js';

const dir = mkdtempSync(join(tmpdir(), 'tar-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function tarOf(members: { name: string; data: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const m of members) pack.entry({ name: m.name, size: m.data.length }, m.data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function readAll(bytes: Buffer): Promise<{ name: string; data: Buffer }[]> {
  const file = join(dir, `a${n++}`);
  writeFileSync(file, bytes);
  const out = [];
  for await (const m of readArchive(file)) {
    const chunks: Buffer[] = [];
    for await (const c of m.body) chunks.push(c);
    if (m.type === 'file') out.push({ name: m.name, data: Buffer.concat(chunks) });
  }
  return out;
}

const names = fc.array(fc.constantFrom('a', 'b', '.', '..', 'blobs', 'sha256', 'x.json', 'É'), { minLength: 1, maxLength: 5 }).map((p) => p.join('/'));
const member = fc.record({ name: names, data: fc.uint8Array({ maxLength: 3000 }).map((u) => Buffer.from(u)) });

describe('readArchive', () => {
  it('yields every member with its bytes, or refuses a name that leaves the archive', async () => {
    await fc.assert(fc.asyncProperty(fc.array(member, { maxLength: 6 }), async (members) => {
      const bytes = await tarOf(members);
      try {
        const got = await readAll(bytes);
        // Members named "." or "./." are the archive's top directory: skipped.
        const named = members.filter((m) => !/^[./]*$/.test(m.name));
        expect(got.map((g) => g.data)).toEqual(named.map((m) => m.data));
        for (const g of got) expect(g.name.split('/')).not.toContain('..');
      } catch (e) {
        expect(e).toBeInstanceOf(ArchiveError);
        expect(members.some((m) => m.name.split('/').includes('..'))).toBe(true);
      }
    }), { numRuns: 150 });
  });

  it('a truncated archive, plain or gzip, is an ArchiveError naming the member or the place', async () => {
    const members = [{ name: 'index.json', data: Buffer.from('{}') }, { name: 'blobs/sha256/big', data: Buffer.alloc(20_000, 7) }, { name: 'tail', data: Buffer.from('x') }];
    const plain = await tarOf(members);
    const gz = zlib.gzipSync(plain);
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.double({ min: 0.01, max: 0.97, noNaN: true }), async (gzip, frac) => {
      const whole = gzip ? gz : plain;
      const cut = whole.subarray(0, Math.floor(whole.length * frac));
      try {
        const got = await readAll(cut);
        // A plain tar cut exactly between members reads as a shorter archive; the importer then misses metadata.
        expect(gzip).toBe(false);
        expect(got.length).toBeLessThan(members.length);
      } catch (e) {
        expect(e).toBeInstanceOf(ArchiveError);
        expect((e as Error).message).toMatch(/cut short|cannot read/);
      }
    }), { numRuns: 60 });
    await expect(readAll(plain.subarray(0, 1024 + 10_000))).rejects.toThrow('blobs/sha256/big: the archive is cut short inside this entry');
  });

  it('reads zstd archives made by the zstd tool, and says so when one is cut short', async () => {
    const members = [{ name: './manifest.json', data: Buffer.from('[]') }, { name: 'layer.tar', data: Buffer.alloc(5 * 1024 * 1024, 0) }];
    const file = join(dir, 'z.tar');
    writeFileSync(file, await tarOf(members));
    execFileSync('zstd', ['-q', '-f', '-19', file, '-o', `${file}.zst`]);
    expect(await detectCompression(`${file}.zst`)).toBe('zstd');
    const got = await readAll(execFileSync('cat', [`${file}.zst`]));
    expect(got.map((g) => [g.name, g.data.length])).toEqual([['manifest.json', 2], ['layer.tar', 5 * 1024 * 1024]]);
    const zst = execFileSync('cat', [`${file}.zst`]);
    await expect(readAll(zst.subarray(0, zst.length - 8))).rejects.toThrow(ArchiveError);
  });
});

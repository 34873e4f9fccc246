// Issue 8 rule 13: walking the cache never takes an I/O error for an empty directory. A directory that is absent is
// empty; anything else (here ELOOP, standing in for EACCES and EIO, which root cannot be shown) is thrown.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { entriesOf, walkDigests } from '../../../src/cache/fs-layout.js';
import { makeTmpDir, removeTmpDir } from '../../helpers/tmp.js';

let dir: string;
afterEach(async () => { await removeTmpDir(dir); });

async function walk(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const f of walkDigests(root, 'blobs')) out.push(f.digest);
  return out;
}

describe('walking the cache', () => {
  it('an absent directory is empty', async () => {
    dir = makeTmpDir('ocimirror-layout-');
    expect(await entriesOf(join(dir, 'nothing-here'))).toEqual([]);
    expect(await walk(dir)).toEqual([]);
  });

  it('an unreadable directory is an error, not an empty cache', async () => {
    dir = makeTmpDir('ocimirror-layout-');
    const hex = 'a'.repeat(64);
    mkdirSync(join(dir, 'blobs', 'sha256', 'aa'), { recursive: true });
    writeFileSync(join(dir, 'blobs', 'sha256', 'aa', hex), 'x');
    expect(await walk(dir)).toEqual([`sha256:${hex}`]);
    symlinkSync('loop', join(dir, 'blobs', 'loop'));
    await expect(walk(dir)).rejects.toMatchObject({ code: 'ELOOP' });
  });
});

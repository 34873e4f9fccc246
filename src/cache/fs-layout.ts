// Where a content-addressed entry lives on disk: <dir>/<top>/<algorithm>/<first two hex>/<hex>. Digests are
// validated before they become paths, so nothing but a checked digest ever names a file.
import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest } from '../oci/names.js';

export function digestPath(dir: string, top: 'blobs' | 'manifests', digest: string): string {
  if (!isDigest(digest)) throw new Error(`refusing a path for invalid digest ${JSON.stringify(digest)}`);
  const [alg, hex] = digest.split(':') as [string, string];
  return join(dir, top, alg, hex.slice(0, 2), hex);
}

const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

/** A directory's entries, none when it does not exist; EACCES, EIO and the like are thrown, never taken for "empty". */
export async function entriesOf(dir: string): Promise<string[]> {
  try { return await readdir(dir); } catch (e) {
    if (ABSENT.has((e as NodeJS.ErrnoException).code ?? '')) return [];
    throw e;
  }
}

/** A file's stat, undefined when it is gone (removed meanwhile); other errors are thrown. */
export async function statIfPresent(file: string): Promise<Stats | undefined> {
  try { return await stat(file); } catch (e) {
    if (ABSENT.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw e;
  }
}

/** Every file under <dir>/<top> named by a valid digest, with its size and modification time; other names are passed to `other`. */
export async function* walkDigests(dir: string, top: 'blobs' | 'manifests', other?: (file: string, name: string) => Promise<void>): AsyncIterable<{ digest: string; size: number; mtimeMs: number }> {
  const root = join(dir, top);
  for (const alg of await entriesOf(root)) {
    for (const prefix of await entriesOf(join(root, alg))) {
      for (const name of await entriesOf(join(root, alg, prefix))) {
        const file = join(root, alg, prefix, name);
        const digest = `${alg}:${name}`;
        if (!isDigest(digest)) { await other?.(file, name); continue; }
        const s = await statIfPresent(file);
        if (s?.isFile()) yield { digest, size: s.size, mtimeMs: s.mtimeMs };
      }
    }
  }
}

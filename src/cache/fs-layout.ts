// Where a content-addressed entry lives on disk: <dir>/<top>/<algorithm>/<first two hex>/<hex>. Digests are
// validated before they become paths, so nothing but a checked digest ever names a file.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest } from '../oci/names.js';

export function digestPath(dir: string, top: 'blobs' | 'manifests', digest: string): string {
  if (!isDigest(digest)) throw new Error(`refusing a path for invalid digest ${JSON.stringify(digest)}`);
  const [alg, hex] = digest.split(':') as [string, string];
  return join(dir, top, alg, hex.slice(0, 2), hex);
}

/** Every file under <dir>/<top> named by a valid digest, with its size and modification time; other names are passed to `other`. */
export async function* walkDigests(dir: string, top: 'blobs' | 'manifests', other?: (file: string, name: string) => Promise<void>): AsyncIterable<{ digest: string; size: number; mtimeMs: number }> {
  const root = join(dir, top);
  for (const alg of await readdir(root).catch(() => [] as string[])) {
    for (const prefix of await readdir(join(root, alg)).catch(() => [] as string[])) {
      for (const name of await readdir(join(root, alg, prefix)).catch(() => [] as string[])) {
        const file = join(root, alg, prefix, name);
        const digest = `${alg}:${name}`;
        if (!isDigest(digest)) { await other?.(file, name); continue; }
        const s = await stat(file).catch(() => undefined);
        if (s?.isFile()) yield { digest, size: s.size, mtimeMs: s.mtimeMs };
      }
    }
  }
}

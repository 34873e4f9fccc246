// Tag mappings on the filesystem: <dir>/tags/<registry>/<repo>/_tags/<tag>/<accept key>.json, plus any.json for
// the latest under any Accept. Written through <dir>/tmp and renamed, so a reader sees a whole mapping or none.
// Reads are remembered briefly in memory: another process (ocimirror import) may write here while we run.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { isRegistryName } from '../config/registries.js';
import { isName, isTag } from '../oci/names.js';
import { acceptKey } from '../oci/mediatypes.js';
import { entriesOf, statIfPresent } from './fs-layout.js';
import type { IndexedEntry } from './lru-index.js';
import { parseMapping, tagId, tagPath, type TagKey, type TagMapping, type TagRef, type TagStore } from './tag-store.js';

/** What one mapping file is counted as in cache.maxSize: a file system block. */
const FILE_BYTES = 4096;
/** How long a mapping read from disk is trusted before it is read again (another process may have changed it). */
const MEMORY_TTL_MS = 2000;

export class FsTagStore implements TagStore {
  private readonly memory = new LRUCache<string, TagMapping>({ max: 50_000, ttl: MEMORY_TTL_MS });

  constructor(private readonly dir: string, private readonly log: Logger) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
  }

  async get(key: TagKey): Promise<TagMapping | undefined> {
    return this.read(join(this.tagDir(key), `${acceptKey(key.accept)}.json`));
  }

  async getAny(ref: TagRef): Promise<TagMapping | undefined> {
    return this.read(join(this.tagDir(ref), 'any.json'));
  }

  async set(key: TagKey, mapping: TagMapping): Promise<number> {
    const dir = this.tagDir(key);
    await this.write(join(dir, `${acceptKey(key.accept)}.json`), mapping);
    await this.write(join(dir, 'any.json'), mapping);
    return (await readdir(dir)).length * FILE_BYTES;
  }

  async delete(ref: TagRef): Promise<void> {
    const dir = this.tagDir(ref);
    for (const k of this.memory.keys()) if (k.startsWith(`${dir}/`)) this.memory.delete(k);
    await rm(dir, { recursive: true, force: true });
  }

  async *list(): AsyncIterable<{ ref: TagRef; mapping: TagMapping; entry: IndexedEntry }> {
    const root = join(this.dir, 'tags');
    for (const registryDir of await entriesOf(root)) {
      let registry: string;
      try { registry = decodeURIComponent(registryDir); } catch { continue; /* not a directory ocimirror made */ }
      if (!isRegistryName(registry) || registry === '*') continue;
      for await (const { repo, tag, dir } of walkTags(join(root, registryDir), '')) {
        const ref = { registry, repo, tag };
        const mapping = await this.read(join(dir, 'any.json'));
        const files = await entriesOf(dir);
        const s = await statIfPresent(join(dir, 'any.json'));
        if (!mapping || !s) continue;
        yield { ref, mapping, entry: { kind: 'tag', id: tagId(ref), size: files.length * FILE_BYTES, accessedAt: s.mtimeMs } };
      }
    }
  }

  private async read(file: string): Promise<TagMapping | undefined> {
    const hit = this.memory.get(file);
    if (hit) return hit;
    let text: string;
    try { text = await readFile(file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ file, err: e }, 'cannot read a tag mapping');
      return undefined;
    }
    const m = parseMapping(text);
    if (!m) { this.log.warn({ file }, 'ignoring a damaged tag mapping'); return undefined; }
    this.memory.set(file, m);
    return m;
  }

  private async write(file: string, mapping: TagMapping): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const tmp = join(this.dir, 'tmp', `tag-${randomBytes(8).toString('hex')}`);
    try {
      await writeFile(tmp, JSON.stringify(mapping));
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    this.memory.set(file, mapping);
  }

  private tagDir(ref: TagRef): string {
    return join(this.dir, tagPath(ref));
  }
}

/** Repository directories below a registry: every path component down to a `_tags` directory (never a name). */
async function* walkTags(dir: string, repo: string): AsyncIterable<{ repo: string; tag: string; dir: string }> {
  for (const name of await entriesOf(dir)) {
    if (name === '_tags') {
      if (!isName(repo)) continue;
      for (const tag of await entriesOf(join(dir, name))) {
        if (isTag(tag)) yield { repo, tag, dir: join(dir, name, tag) };
      }
    } else if (!name.startsWith('.')) {
      yield* walkTags(join(dir, name), repo ? `${repo}/${name}` : name);
    }
  }
}

// Tag → manifest mappings, persisted under <dir>/tags so a restarted proxy can still answer for a tag while every
// upstream is down. Keyed by registry, repository, tag and the client's Accept set (Docker Hub answers a tag
// differently depending on Accept).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { isName, isTag } from '../oci/names.js';

export interface TagMapping {
  digest: string;
  mediaType: string;
  size: number;
  /** When upstream last confirmed this mapping (ms since epoch). */
  checkedAt: number;
}

export interface TagKey { registry: string; repo: string; tag: string; accept: string }

export class TagStore {
  private readonly memory = new LRUCache<string, TagMapping>({ max: 50_000 });

  constructor(private readonly dir: string) {}

  async get(key: TagKey): Promise<TagMapping | undefined> {
    return this.read(this.file(key));
  }

  /** The last mapping seen for the tag under any Accept set (for serving offline to another kind of client). */
  async getAny(key: Omit<TagKey, 'accept'>): Promise<TagMapping | undefined> {
    return this.read(this.file({ ...key, accept: '' }, 'any'));
  }

  private async read(file: string): Promise<TagMapping | undefined> {
    const hit = this.memory.get(file);
    if (hit) return hit;
    try {
      const m = JSON.parse(await readFile(file, 'utf8')) as TagMapping;
      this.memory.set(file, m);
      return m;
    } catch {
      return undefined;
    }
  }

  async set(key: TagKey, mapping: TagMapping): Promise<void> {
    await this.write(this.file(key), mapping);
    await this.write(this.file(key, 'any'), mapping);
  }

  private async write(file: string, mapping: TagMapping): Promise<void> {
    this.memory.set(file, mapping);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(mapping));
    await rename(tmp, file);
  }

  /** Paths are built only from validated grammar: registry host (URI-encoded), repository name and tag. */
  private file(key: TagKey, name?: string): string {
    if (!isName(key.repo) || !isTag(key.tag) || !/^[a-z0-9.:[\]-]+$/i.test(key.registry)) throw new Error('refusing an unvalidated tag key');
    return join(this.dir, 'tags', encodeURIComponent(key.registry), key.repo, '_tags', key.tag, `${name ?? acceptKey(key.accept)}.json`);
  }
}

/** The Accept set, order and parameters ignored. */
export function acceptKey(accept: string): string {
  const types = accept.split(',').map((t) => t.split(';')[0]?.trim().toLowerCase() ?? '').filter(Boolean).sort();
  return createHash('sha256').update([...new Set(types)].join(',')).digest('hex').slice(0, 16);
}

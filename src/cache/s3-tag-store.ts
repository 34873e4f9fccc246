// Tag mappings on S3: <prefix>tags/<registry>/<repo>/_tags/<tag>/<accept key>.json plus any.json, the layout of
// the filesystem store, so they outlive every replica and Redis. A mapping is written when it changes (digest,
// type or size); a revalidation that only confirms it is remembered in this process, not written: the bucket is
// not rewritten once per tag per replica per cache.tagTtl.
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { acceptKey } from '../oci/mediatypes.js';
import type { IndexedEntry } from './lru-index.js';
import { isNotFound, listObjects, normalizePrefix, sendRead, unavailable } from './s3-client.js';
import { isTagRef, parseMapping, tagId, tagPath, type TagKey, type TagMapping, type TagRef, type TagStore } from './tag-store.js';

/** What one mapping object is counted as in cache.maxSize: as much as a filesystem block, as the fs store does. */
const OBJECT_BYTES = 4096;
/** How long a mapping read from the bucket is trusted before it is read again (another replica may change it). */
const MEMORY_TTL_MS = 2000;

export interface S3TagStoreOptions {
  client: S3Client;
  bucket: string;
  prefix: string;
  log: Logger;
}

export class S3TagStore implements TagStore {
  readonly prefix: string;
  private readonly memory = new LRUCache<string, TagMapping | false>({ max: 50_000, ttl: MEMORY_TTL_MS });
  /** The newest confirmation this process has of a mapping still stored unchanged (its checkedAt is the news). */
  private readonly confirmed = new LRUCache<string, TagMapping>({ max: 50_000 });
  private readonly sizes = new LRUCache<string, number>({ max: 50_000 });
  private readWarned = false;

  constructor(private readonly opts: S3TagStoreOptions) {
    this.prefix = normalizePrefix(opts.prefix);
  }

  async get(key: TagKey): Promise<TagMapping | undefined> {
    return this.read(`${this.tagDir(key)}${acceptKey(key.accept)}.json`);
  }

  async getAny(ref: TagRef): Promise<TagMapping | undefined> {
    return this.read(`${this.tagDir(ref)}any.json`);
  }

  async set(key: TagKey, mapping: TagMapping): Promise<number> {
    const dir = this.tagDir(key);
    let wrote = false;
    for (const object of [`${dir}${acceptKey(key.accept)}.json`, `${dir}any.json`]) {
      const stored = await this.stored(object);
      if (stored && sameMapping(stored, mapping)) {
        this.confirmed.set(object, mapping);
        continue;
      }
      await this.write(object, mapping);
      wrote = true;
    }
    const known = this.sizes.get(dir);
    if (!wrote && known !== undefined) return known;
    const size = (await this.keysUnder(dir)).length * OBJECT_BYTES;
    this.sizes.set(dir, size);
    return size;
  }

  async delete(ref: TagRef): Promise<void> {
    const dir = this.tagDir(ref);
    for (const Key of await this.keysUnder(dir)) {
      this.memory.delete(Key);
      this.confirmed.delete(Key);
      await this.opts.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key }));
    }
    this.sizes.delete(dir);
  }

  async *list(): AsyncIterable<{ ref: TagRef; mapping: TagMapping; entry: IndexedEntry }> {
    // Keys come sorted, so a tag's objects are neighbours: count them, then read its any.json.
    let current: { dir: string; count: number; any?: { key: string; at: number } } | undefined;
    const finish = async function* (this: S3TagStore, t: typeof current) {
      if (!t?.any) return;
      const ref = this.refOf(t.dir);
      const mapping = ref && (await this.read(t.any.key));
      if (ref && mapping) yield { ref, mapping, entry: { kind: 'tag' as const, id: tagId(ref), size: t.count * OBJECT_BYTES, accessedAt: t.any.at } };
    }.bind(this);
    for await (const o of this.objects(`${this.prefix}tags/`)) {
      const dir = o.key.slice(0, o.key.lastIndexOf('/') + 1);
      if (current?.dir !== dir) {
        yield* finish(current);
        current = { dir, count: 0 };
      }
      current.count++;
      if (o.key.endsWith('/any.json')) current.any = { key: o.key, at: o.at };
    }
    yield* finish(current);
  }

  /** A mapping as stored, with this process's newer confirmation of it when there is one. */
  private async read(object: string): Promise<TagMapping | undefined> {
    const stored = await this.stored(object);
    const confirmed = this.confirmed.get(object);
    if (!stored) return undefined;
    return confirmed && sameMapping(stored, confirmed) && confirmed.checkedAt > stored.checkedAt ? confirmed : stored;
  }

  /** The object's mapping (briefly remembered), or undefined; a store that cannot be read counts as absent. */
  private async stored(object: string): Promise<TagMapping | undefined> {
    const hit = this.memory.get(object);
    if (hit !== undefined) return hit || undefined;
    let text: string;
    try {
      const res = await sendRead('read a tag mapping', (abortSignal) => this.opts.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: object }), { abortSignal }));
      text = await res.Body!.transformToString('utf8');
    } catch (err) {
      if (isNotFound(err)) { this.memory.set(object, false); return undefined; }
      // Upstream answers instead; the manifest cache reports the store when it cannot write either.
      if (!this.readWarned) this.opts.log.warn({ err }, 'cannot read tag mappings from the object store');
      this.readWarned = true;
      return undefined;
    }
    this.readWarned = false;
    const m = parseMapping(text);
    if (!m) this.opts.log.warn({ key: object }, 'ignoring a damaged tag mapping');
    this.memory.set(object, m ?? false);
    return m;
  }

  private async write(object: string, mapping: TagMapping): Promise<void> {
    const body = Buffer.from(JSON.stringify(mapping));
    try {
      await this.opts.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: object, Body: body, ContentLength: body.length, ContentType: 'application/json' }));
    } catch (err) {
      throw unavailable(err, 'store a tag mapping');
    }
    this.memory.set(object, mapping);
    this.confirmed.delete(object);
  }

  private async keysUnder(dir: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const o of this.objects(dir)) keys.push(o.key);
    return keys;
  }

  private async *objects(prefix: string): AsyncIterable<{ key: string; at: number }> {
    for await (const o of listObjects(this.opts.client, this.opts.bucket, prefix)) yield { key: o.key, at: o.modified ?? Date.now() };
  }

  private tagDir(ref: TagRef): string {
    return `${this.prefix}${tagPath(ref)}/`;
  }

  /** The tag a folder of ours names, or undefined for anything else found under tags/. */
  private refOf(dir: string): TagRef | undefined {
    const m = /^([^/]+)\/(.+)\/_tags\/([^/]+)\/$/.exec(dir.slice(`${this.prefix}tags/`.length));
    if (!m) return undefined;
    let registry: string;
    try { registry = decodeURIComponent(m[1]!); } catch { return undefined; }
    const ref = { registry, repo: m[2]!, tag: m[3]! };
    return isTagRef(ref) ? ref : undefined;
  }
}

function sameMapping(a: TagMapping, b: TagMapping): boolean {
  return a.digest === b.digest && a.mediaType === b.mediaType && a.size === b.size && a.imported === b.imported;
}

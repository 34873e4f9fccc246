// The filesystem manifest store: <dir>/manifests/sha256/ab/<hex>, one file each holding the media type on its
// first line and the manifest's exact bytes after it, so a manifest and its type become visible together (one
// rename). Written through <dir>/tmp like blobs; sizes are checked before anything is read.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { MAX_MANIFEST_BYTES } from '../oci/mediatypes.js';
import { digestPath, walkDigests } from './fs-layout.js';
import type { IndexedEntry } from './lru-index.js';
import { checkManifest, isMediaType, type ManifestHead, type ManifestStore, type StoredManifest } from './manifest-store.js';

/** The first line: a media type is at most 255 bytes, plus the newline. */
const HEADER_MAX = 256;

export class FsManifestStore implements ManifestStore {
  constructor(readonly dir: string, private readonly log: Logger) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    await mkdir(join(this.dir, 'manifests'), { recursive: true });
  }

  path(digest: string): string {
    return digestPath(this.dir, 'manifests', digest);
  }

  async head(digest: string): Promise<ManifestHead | undefined> {
    return this.read(digest, false);
  }

  async get(digest: string): Promise<StoredManifest | undefined> {
    return this.read(digest, true) as Promise<StoredManifest | undefined>;
  }

  private async read(digest: string, withBody: boolean): Promise<ManifestHead | StoredManifest | undefined> {
    const file = this.path(digest);
    let handle;
    try { handle = await open(file, 'r'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const { size: fileSize } = await handle.stat();
      if (fileSize > HEADER_MAX + MAX_MANIFEST_BYTES) return await this.discard(digest, `file of ${fileSize} bytes is larger than any manifest`);
      const buf = Buffer.allocUnsafe(withBody ? fileSize : Math.min(fileSize, HEADER_MAX));
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      const mediaType = nl > 0 ? buf.toString('latin1', 0, nl) : '';
      if (!isMediaType(mediaType)) return await this.discard(digest, 'no media type line');
      const size = fileSize - nl - 1;
      if (!withBody) return { digest, mediaType, size };
      if (bytesRead !== fileSize) return await this.discard(digest, 'file changed while it was read');
      return { digest, mediaType, size, body: buf.subarray(nl + 1) };
    } finally {
      await handle.close();
    }
  }

  /** A file that cannot be a manifest we wrote (damaged disk, hand edits): logged and removed, never served. */
  private async discard(digest: string, why: string): Promise<undefined> {
    this.log.error({ digest, file: this.path(digest), why }, 'removing a damaged manifest from the cache');
    await rm(this.path(digest), { force: true });
    return undefined;
  }

  async put(digest: string, mediaType: string, body: Buffer): Promise<ManifestHead> {
    const file = this.path(digest);
    checkManifest(digest, mediaType, body);
    const tmp = join(this.dir, 'tmp', `manifest-${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}`);
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(Buffer.concat([Buffer.from(`${mediaType}\n`, 'latin1'), body]));
      await handle.sync();
    } catch (e) {
      await handle.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await handle.close();
    await mkdir(dirname(file), { recursive: true });
    try { await rename(tmp, file); } catch (e) { await rm(tmp, { force: true }); throw e; }
    const d = await open(dirname(file), 'r');
    await d.sync().finally(() => d.close());
    return { digest, mediaType, size: body.length };
  }

  async delete(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  async touch(digest: string, at = new Date()): Promise<void> {
    await utimes(this.path(digest), at, at).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') this.log.warn({ digest, err: e }, 'cannot record a manifest access time');
    });
  }

  async *list(): AsyncIterable<IndexedEntry> {
    // ocimirror 0.1 kept manifests among the blobs with their media type in <hex>.json here: they are fetched again once.
    const dropLegacy = async (file: string, name: string) => { if (/^[a-f0-9]{64,128}\.json$/.test(name)) await rm(file, { force: true }); };
    for await (const f of walkDigests(this.dir, 'manifests', dropLegacy)) yield { kind: 'manifest', id: f.digest, size: f.size, accessedAt: f.mtimeMs };
  }
}

// The first half of an import: every member of the archive is read once and kept out of sight until the images
// it belongs to are known to be whole. Members named by a digest go into blob-store writers (verified against
// the name, committed later or never); metadata is kept in memory (bounded); any other regular file is spooled to
// disk with its digest computed, because only metadata read later (a docker config) says what it is.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGunzip } from 'node:zlib';
import { ArchiveError } from '../archive/archive-error.js';
import { entryRole, resolveLink, type MetadataFile } from '../archive/entry-names.js';
import type { ArchiveMember } from '../archive/tar-input.js';
import { DigestMismatchError, type BlobStore, type BlobWriter } from '../cache/blob-store.js';
import { BufferRelease } from './buffer-release.js';

const METADATA_LIMIT = 16 * 1024 * 1024;
const MAX_MEMBERS = 100_000;

export type StagedBlob =
  | { ok: true; digest: string; entry: string; size: number; writer: BlobWriter; committed: boolean }
  | { ok: false; digest: string; entry: string; problem: string };

export interface SpooledFile {
  entry: string;
  file: string;
  size: number;
  /** sha256 of the bytes as stored. */
  digest: string;
  /** The first bytes (what compression the member uses). */
  head: Buffer;
  /** sha256 of the gunzipped bytes, when the member is gzip-compressed (a layer's diff id). */
  gunzippedDigest?: string;
  /** Why the gzip stream could not be read, when it was one. */
  gzipProblem?: string;
}

export class ArchiveStaging {
  readonly blobs = new Map<string, StagedBlob>();
  readonly spooled = new Map<string, SpooledFile>();
  readonly metadata = new Map<MetadataFile, { entry: string; data: Buffer }>();
  private readonly links = new Map<string, string>();
  private members = 0;
  private readonly release = new BufferRelease();

  constructor(private readonly store: BlobStore, private readonly spoolDir: string) {}

  async add(member: ArchiveMember): Promise<void> {
    if (++this.members > MAX_MEMBERS) throw new ArchiveError(member.name, `more than ${MAX_MEMBERS} members: not an image archive ocimirror will read`);
    if (member.type === 'symlink') {
      const target = member.linkname === undefined ? undefined : resolveLink(member.name, member.linkname);
      if (target !== undefined) this.links.set(member.name, target);
      return;
    }
    if (member.type !== 'file') return;
    const role = entryRole(member.name);
    if (role.kind === 'metadata') {
      if (member.size > METADATA_LIMIT) throw new ArchiveError(member.name, `${member.size} bytes is more than metadata may hold (${METADATA_LIMIT})`);
      const chunks: Buffer[] = [];
      for await (const c of member.body) chunks.push(c);
      this.metadata.set(role.file, { entry: member.name, data: Buffer.concat(chunks) });
    } else if (role.kind === 'blob') {
      if (!this.blobs.has(role.digest)) this.blobs.set(role.digest, await this.stageBlob(member, role.digest));
    } else {
      this.spooled.set(member.name, await this.spool(member));
    }
  }

  private async stageBlob(member: ArchiveMember, digest: string): Promise<StagedBlob> {
    const writer = await this.store.createWriter(digest);
    try {
      for await (const c of member.body) { this.release.add(c.length); await writer.write(c); }
      await writer.verify(member.size);
      return { ok: true, digest, entry: member.name, size: writer.written, writer, committed: false };
    } catch (err) {
      await writer.abort();
      await writer.close();
      if (err instanceof DigestMismatchError) return { ok: false, digest, entry: member.name, problem: `content does not match the digest its name gives (got ${err.actual})` };
      throw err;
    }
  }

  private async spool(member: ArchiveMember): Promise<SpooledFile> {
    await mkdir(this.spoolDir, { recursive: true });
    const file = join(this.spoolDir, String(this.spooled.size));
    const out = createWriteStream(file);
    const raw = createHash('sha256');
    let gunzip: { stream: ReturnType<typeof createGunzip>; hash: ReturnType<typeof createHash>; done: Promise<void>; problem?: string } | undefined;
    let size = 0;
    let head = Buffer.alloc(0);
    for await (const c of member.body) {
      if (size === 0 && c.length >= 2 && c[0] === 0x1f && c[1] === 0x8b) gunzip = this.gunzipTap();
      if (head.length < 4) head = Buffer.concat([head, c.subarray(0, 4 - head.length)]);
      size += c.length;
      this.release.add(c.length);
      raw.update(c);
      if (gunzip && !gunzip.problem && !gunzip.stream.write(c)) await Promise.race([once(gunzip.stream, 'drain'), gunzip.done]);
      if (!out.write(c)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    let gz: Partial<SpooledFile> = {};
    if (gunzip) {
      gunzip.stream.end();
      await gunzip.done;
      gz = gunzip.problem ? { gzipProblem: gunzip.problem } : { gunzippedDigest: `sha256:${gunzip.hash.digest('hex')}` };
    }
    return { entry: member.name, file, size, digest: `sha256:${raw.digest('hex')}`, head, ...gz };
  }

  /** Hashes what a gzip member decompresses to (its diff id), alongside the spooling. */
  private gunzipTap() {
    const stream = createGunzip();
    const hash = createHash('sha256');
    const tap: { stream: typeof stream; hash: typeof hash; done: Promise<void>; problem?: string } = { stream, hash, done: Promise.resolve() };
    stream.on('data', (d: Buffer) => hash.update(d));
    tap.done = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('error', (e) => { tap.problem = e.message; resolve(); });
    });
    return tap;
  }

  /** The member a name refers to, following symbolic links inside the archive (as docker save writes for shared layers). */
  resolve(name: string): string {
    let n = name;
    for (let hops = 0; hops < 16 && this.links.has(n); hops++) n = this.links.get(n) as string;
    return n;
  }

  /** Discards everything not committed, and the spool. */
  async discard(): Promise<void> {
    for (const b of this.blobs.values()) {
      if (!b.ok) continue;
      if (!b.committed) await b.writer.abort();
      await b.writer.close();
    }
    await rm(this.spoolDir, { recursive: true, force: true });
  }
}

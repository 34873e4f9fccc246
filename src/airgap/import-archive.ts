// `ocimirror import`, one archive: read every member once into staging (tar-input → ArchiveStaging), work out its
// images (OCI layout when it has index.json, else docker save), then make each whole image visible bottom-up —
// blobs, then manifests (children first), then its tags — so a client never finds a tag whose content is not all
// there. An image with a missing or corrupt part is skipped whole; the others of the archive are still imported.
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readArchive } from '../archive/tar-input.js';
import type { CacheStores } from '../cache/service.js';
import { setImportedTag } from '../cache/imported-tags.js';
import { isDigest } from '../oci/names.js';
import { planDockerArchive } from './import-docker.js';
import { planOciLayout } from './import-oci.js';
import type { BlobSource, ImageOutcome, PlannedImage } from './import-plan.js';
import { ArchiveStaging } from './import-staging.js';

export interface ImportedImage {
  label: string;
  /** Full references whose tags now map to `digest`. */
  tags: string[];
  digest: string;
  mediaType: string;
  blobs: number;
  bytes: number;
  skipped: string[];
  notes: string[];
}

export interface ArchiveReport {
  file: string;
  imported: ImportedImage[];
  failed: { label: string; problem: string }[];
}

export interface ImportOptions {
  /** Where members that are not named by a digest wait until metadata says what they are. */
  spoolDir: string;
  now?: () => number;
}

/** Imports one archive. A damaged archive (cut short, unreadable) throws an ArchiveError and imports nothing. */
export async function importArchive(file: string, stores: CacheStores, opts: ImportOptions): Promise<ArchiveReport> {
  const staging = new ArchiveStaging(stores.blobs, join(opts.spoolDir, `import-${randomBytes(6).toString('hex')}`));
  try {
    for await (const member of readArchive(file)) await staging.add(member);
    const outcomes: ImageOutcome[] = staging.metadata.has('index.json') ? await planOciLayout(staging) : await planDockerArchive(staging);
    const report: ArchiveReport = { file, imported: [], failed: [] };
    const stored = new Set<string>();
    for (const o of outcomes) {
      if (!o.ok) { report.failed.push({ label: o.label, problem: o.problem }); continue; }
      try {
        report.imported.push(await commitImage(o, stores, stored, opts.now ?? Date.now));
      } catch (err) {
        report.failed.push({ label: o.label, problem: `could not be stored: ${(err as Error).message}` });
      }
    }
    return report;
  } finally {
    await staging.discard();
  }
}

async function commitImage(image: PlannedImage, stores: CacheStores, stored: Set<string>, now: () => number): Promise<ImportedImage> {
  let bytes = 0;
  for (const source of image.blobs.values()) {
    bytes += await commitBlob(source, stores, stored);
  }
  for (const m of image.manifests) await stores.manifests.put(m.digest, m.mediaType, m.body);
  const head = { digest: image.top.digest, mediaType: image.top.mediaType, size: image.top.body.length };
  const tags: string[] = [];
  for (const name of image.names) {
    if (isDigest(name.reference)) continue;
    await setImportedTag(stores.tags, { registry: name.registry, repo: name.repo, tag: name.reference }, head, now());
    tags.push(name.display);
  }
  return { label: image.label, tags, digest: head.digest, mediaType: head.mediaType, blobs: image.blobs.size, bytes, skipped: image.skipped, notes: image.notes };
}

/** Makes one blob visible (once per archive, however many images share it); returns its size. */
async function commitBlob(source: BlobSource, stores: CacheStores, stored: Set<string>): Promise<number> {
  if (source.kind === 'staged') {
    if (!source.staged.committed) {
      await source.staged.writer.commit(source.staged.size);
      source.staged.committed = true;
    }
    stored.add(source.digest);
    return source.staged.size;
  }
  const { spooled } = source;
  if (!stored.has(source.digest) && !(await stores.blobs.stat(source.digest))) {
    // Spooled members were hashed while spooled; the store checks the digest again as it copies them in.
    const writer = await stores.blobs.createWriter(source.digest);
    try {
      for await (const chunk of createReadStream(spooled.file, { highWaterMark: 1024 * 1024 })) await writer.write(chunk as Buffer);
      await writer.commit(spooled.size);
    } catch (err) {
      await writer.abort();
      throw err;
    } finally {
      await writer.close();
    }
  }
  stored.add(source.digest);
  return spooled.size;
}

// What an import found in an archive, image by image, before anything is committed: each image's names, its
// manifests (children before parents) and where each of its blobs is staged. Shared by both archive formats.
import { ArchiveError } from '../archive/archive-error.js';
import { blobPath, entryRole } from '../archive/entry-names.js';
import { ImageRefError, parseImageRef, type ImageRef } from '../warm/reference.js';
import type { ArchiveStaging, SpooledFile, StagedBlob } from './import-staging.js';

export interface PlannedManifest { digest: string; mediaType: string; body: Buffer }

export type BlobSource =
  | { kind: 'staged'; digest: string; staged: Extract<StagedBlob, { ok: true }> }
  | { kind: 'spooled'; digest: string; spooled: SpooledFile };

export interface PlannedImage {
  ok: true;
  /** How messages name the image: its first name, else its digest. */
  label: string;
  names: ImageRef[];
  top: PlannedManifest;
  /** Children first, the top manifest last: each is stored only after what it refers to. */
  manifests: PlannedManifest[];
  blobs: Map<string, BlobSource>;
  /** Platforms of an index whose manifests the archive does not hold (a platform subset was exported). */
  skipped: string[];
  notes: string[];
}

export interface FailedImage { ok: false; label: string; problem: string }

export type ImageOutcome = PlannedImage | FailedImage;

/** Image names as archives write them: "docker.io/library/app:1.0", "app:1.0", "localhost/x:y". */
export function parseArchiveName(text: string, where: string, entry: string): ImageRef {
  try {
    return parseImageRef(text);
  } catch (e) {
    if (e instanceof ImageRefError) throw new ArchiveError(entry, `${where}: ${e.message}`);
    throw e;
  }
}

/** A staged blob by digest, or an error naming the member it should have come from and who asked for it. */
export function stagedBlob(staging: ArchiveStaging, digest: string, size: number | undefined, wanted: string): Extract<StagedBlob, { ok: true }> {
  const b = staging.blobs.get(digest);
  if (!b) throw new ArchiveError(blobPath(digest), `missing from the archive (${wanted})`);
  if (!b.ok) throw new ArchiveError(b.entry, b.problem);
  if (size !== undefined && b.size !== size) throw new ArchiveError(b.entry, `is ${b.size} bytes, but ${wanted} says ${size}`);
  return b;
}

/** The content a member name (from docker-archive metadata) refers to: staged under its digest, or spooled. */
export function memberSource(staging: ArchiveStaging, name: string, wanted: string): BlobSource {
  const member = staging.resolve(name);
  const role = entryRole(member);
  if (role.kind === 'blob') return { kind: 'staged', digest: role.digest, staged: stagedBlob(staging, role.digest, undefined, wanted) };
  const spooled = staging.spooled.get(member);
  if (!spooled) throw new ArchiveError(name, `missing from the archive (${wanted})`);
  return { kind: 'spooled', digest: spooled.digest, spooled };
}

export function failure(label: string, err: unknown): FailedImage {
  if (err instanceof ArchiveError) return { ok: false, label, problem: err.message };
  throw err;
}

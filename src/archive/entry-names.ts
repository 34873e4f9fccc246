// Names of tar members in image archives, and what each kind of name means: OCI layouts keep every blob at
// blobs/<algorithm>/<hex>; docker-archive writers name configs <hex>.json and layers <hex>.tar by their digest;
// `docker save` before Docker 25 keeps layers at <layer id>/layer.tar, whose digest only the config tells.
import { isDigest } from '../oci/names.js';

/** Archive metadata files, read whole (each is small). */
export const METADATA_FILES = ['oci-layout', 'index.json', 'manifest.json', 'repositories'] as const;
export type MetadataFile = (typeof METADATA_FILES)[number];

export type EntryRole =
  /** Content named by its digest: verified against the name while it is read. */
  | { kind: 'blob'; digest: string }
  | { kind: 'metadata'; file: MetadataFile }
  /** Any other regular file: its digest is computed while it is read, and metadata read later may name it. */
  | { kind: 'other' };

const MAX_NAME = 4096;

/**
 * The path a tar member names, as archive metadata refers to it: no leading "./" or "/", no "." components, no
 * trailing "/". Undefined for names that climb out of the archive (".."), hold NUL or are absurdly long.
 */
export function normaliseEntryName(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_NAME || raw.includes('\0')) return undefined;
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.length === 0 ? undefined : parts.join('/');
}

const BLOB_PATH = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;
const DIGEST_NAMED = /^([a-f0-9]{64})\.(json|tar)$/;

/** What a normalised member name is; the caller has already normalised it. */
export function entryRole(name: string): EntryRole {
  const blob = BLOB_PATH.exec(name);
  if (blob) {
    const digest = `${blob[1]}:${blob[2]}`;
    return isDigest(digest) ? { kind: 'blob', digest } : { kind: 'other' };
  }
  const named = DIGEST_NAMED.exec(name);
  if (named) return { kind: 'blob', digest: `sha256:${named[1]}` };
  if ((METADATA_FILES as readonly string[]).includes(name)) return { kind: 'metadata', file: name as MetadataFile };
  return { kind: 'other' };
}

/** Where a symbolic link inside the archive points, as a normalised member name (undefined if it leaves the archive). */
export function resolveLink(from: string, target: string): string | undefined {
  if (target.startsWith('/')) return normaliseEntryName(target);
  const dir = from.includes('/') ? from.slice(0, from.lastIndexOf('/')) : '';
  const parts = dir ? dir.split('/') : [];
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') { if (parts.length === 0) return undefined; parts.pop(); continue; }
    parts.push(part);
  }
  return parts.length === 0 ? undefined : normaliseEntryName(parts.join('/'));
}

/** The member name an OCI layout uses for a blob. */
export function blobPath(digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return `blobs/${alg}/${hex}`;
}

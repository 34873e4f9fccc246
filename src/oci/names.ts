// Grammar of repository names, tags and digests (distribution-spec), checked before anything goes upstream or
// near the disk.
import { OciError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:\\/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_NAME = 255;

export function isName(name: string): boolean {
  return name.length <= MAX_NAME && NAME_RE.test(name);
}
export function isTag(ref: string): boolean {
  return TAG_RE.test(ref);
}
export function isDigest(ref: string): boolean {
  return DIGEST_RE.test(ref);
}

export function checkName(name: string): string {
  if (!isName(name)) throw new OciError('NAME_INVALID', { name });
  return name;
}

export function checkDigest(digest: string): string {
  if (!isDigest(digest)) throw new OciError('DIGEST_INVALID', { digest }, { message: 'invalid digest' });
  return digest;
}

/** A manifest reference is a tag or a digest. */
export function checkReference(ref: string): { tag?: string; digest?: string } {
  if (isDigest(ref)) return { digest: ref };
  if (isTag(ref)) return { tag: ref };
  if (ref.includes(':')) throw new OciError('DIGEST_INVALID', { reference: ref }, { message: 'invalid digest' });
  throw new OciError('TAG_INVALID', { reference: ref }, { message: 'invalid tag' });
}

export type Resource = 'manifests' | 'blobs' | 'tags' | 'referrers';

export interface ParsedPath {
  /** Name as requested (may start with a registry host when a client uses path-prefix routing). */
  name: string;
  resource: Resource;
  /** Reference (tag/digest) or, for tags, "list". */
  ref: string;
}

// Anchored at the end: names contain slashes, so the resource is the last /<resource>/<ref> pair.
const PATH_RE = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/([^/]+)$/;

export function parseApiPath(path: string): ParsedPath | undefined {
  const m = PATH_RE.exec(path);
  if (!m) return undefined;
  const resource = m[2] as Resource;
  if (resource === 'tags' && m[3] !== 'list') return undefined;
  return { name: m[1] as string, resource, ref: m[3] as string };
}

import { createHash } from 'node:crypto';

export const MANIFEST_TYPES = {
  dockerV2: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

/** What we ask for when a client sent no Accept (Docker Hub would otherwise answer with schema 1). */
export const DEFAULT_MANIFEST_ACCEPT = [
  MANIFEST_TYPES.dockerV2, MANIFEST_TYPES.dockerList, MANIFEST_TYPES.ociManifest, MANIFEST_TYPES.ociIndex,
].join(', ');

const SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';
const SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
const OCI_ARTIFACT = 'application/vnd.oci.artifact.manifest.v1+json';

/** Docker schema 1, signed and not: containers/image (skopeo, podman, CRI-O) still names both in its Accept. */
export const SCHEMA1_TYPES: readonly string[] = [SCHEMA1_SIGNED, SCHEMA1];

/** Every manifest media type ocimirror serves a manifest as. */
const KNOWN_MANIFEST_TYPES = new Set<string>([...Object.values(MANIFEST_TYPES), SCHEMA1, SCHEMA1_SIGNED, OCI_ARTIFACT]);

/** Every type a manifest request's Accept may usefully name; anything else a client sends is dropped. */
const KNOWN_ACCEPT = new Set<string>([...KNOWN_MANIFEST_TYPES, '*/*']);

/** A Content-Type reduced to a known manifest media type, or undefined ("text/html", junk, nothing). */
export function knownManifestType(contentType: string | undefined): string | undefined {
  const t = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  return t && KNOWN_MANIFEST_TYPES.has(t) ? t : undefined;
}

/**
 * The Accept a manifest request is cached under and forwarded with: the known manifest media types the client
 * named, sorted, without parameters or duplicates; DEFAULT_MANIFEST_ACCEPT when it named none. Junk variants of
 * one client's header therefore share one cache entry and one upstream request.
 */
export function normaliseAccept(accept: string | string[] | undefined): string {
  const raw = Array.isArray(accept) ? accept.join(',') : (accept ?? '');
  const types = new Set<string>();
  for (const part of raw.slice(0, 8192).split(',')) {
    const t = part.split(';', 1)[0]?.trim().toLowerCase() ?? '';
    if (KNOWN_ACCEPT.has(t)) types.add(t);
  }
  return types.size === 0 ? DEFAULT_MANIFEST_ACCEPT : [...types].sort().join(', ');
}

/** Keys already computed: a normalised Accept is one of a few hundred sets at most, so this stays small. */
const acceptKeys = new Map<string, string>();

/** A short stable name for an Accept (file names, map keys); asked on every tag lookup, so remembered. */
export function acceptKey(accept: string): string {
  const normalised = normaliseAccept(accept);
  let key = acceptKeys.get(normalised);
  if (key === undefined) {
    key = createHash('sha256').update(normalised).digest('hex').slice(0, 16);
    // There are 2^9 sets of the known types; the bound only matters if that list grows.
    if (acceptKeys.size >= 1024) acceptKeys.clear();
    acceptKeys.set(normalised, key);
  }
  return key;
}

/** Whether an Accept admits a media type (a wildcard admits anything). */
export function accepts(accept: string, mediaType: string): boolean {
  const types = normaliseAccept(accept).split(', ');
  return types.includes('*/*') || types.includes(mediaType.toLowerCase());
}

/** containerd refuses manifests larger than this; so do we. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

interface ManifestShape { mediaType?: unknown; schemaVersion?: unknown; signatures?: unknown; manifests?: unknown; config?: unknown; layers?: unknown; blobs?: unknown }

/**
 * The media type a digest-verified manifest is served with, decided by its bytes wherever they can: the type it
 * declares (a known one), else its shape (schema 1, index, image manifest, artifact). Only bytes that say nothing
 * fall back to what the upstream said for this request, and only to a known manifest type. The same bytes from any
 * registry therefore get the same type: one registry cannot poison another's answer for a shared digest.
 */
export function manifestMediaType(body: Buffer, upstreamContentType?: string): string {
  let doc: ManifestShape | undefined;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) doc = parsed as ManifestShape;
  } catch {
    doc = undefined; // Not JSON: nothing in the bytes to go by.
  }
  const declared = typeof doc?.mediaType === 'string' ? knownManifestType(doc.mediaType) : undefined;
  if (declared) return declared;
  if (doc?.schemaVersion === 1) return Array.isArray(doc.signatures) ? SCHEMA1_SIGNED : SCHEMA1;
  if (Array.isArray(doc?.manifests)) return MANIFEST_TYPES.ociIndex;
  if (doc?.config && typeof doc.config === 'object' && Array.isArray(doc.layers)) return MANIFEST_TYPES.ociManifest;
  if (Array.isArray(doc?.blobs)) return OCI_ARTIFACT;
  return knownManifestType(upstreamContentType) ?? MANIFEST_TYPES.ociManifest;
}

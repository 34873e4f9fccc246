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

/** Every type a manifest request's Accept may usefully name; anything else a client sends is dropped. */
const KNOWN_ACCEPT = new Set<string>([
  ...Object.values(MANIFEST_TYPES),
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.oci.artifact.manifest.v1+json',
  '*/*',
]);

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

/** A short stable name for a normalised Accept (file names, map keys). */
export function acceptKey(accept: string): string {
  return createHash('sha256').update(normaliseAccept(accept)).digest('hex').slice(0, 16);
}

/** Whether an Accept admits a media type (a wildcard admits anything). */
export function accepts(accept: string, mediaType: string): boolean {
  const types = normaliseAccept(accept).split(', ');
  return types.includes('*/*') || types.includes(mediaType.toLowerCase());
}

/** containerd refuses manifests larger than this; so do we. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The media type a manifest declares about itself, if it is JSON with a mediaType field. */
export function declaredMediaType(body: Buffer): string | undefined {
  try {
    const v = JSON.parse(body.toString('utf8')) as { mediaType?: unknown };
    return typeof v.mediaType === 'string' ? v.mediaType : undefined;
  } catch {
    return undefined;
  }
}

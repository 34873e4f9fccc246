// Image references as people type them (`alpine`, `docker.io/library/alpine:3.19`, `127.0.0.1:5000/x/y@sha256:…`)
// → registry, repository and tag or digest, normalised the way containerd and Docker do.
import { isDigest, isName, isTag } from '../oci/names.js';

export interface ImageRef {
  /** Registry host[:port] the image belongs to: what the proxy is told in ?ns=. */
  registry: string;
  /** Repository at that registry ("library/alpine" for Docker Hub official images). */
  repo: string;
  /** Tag or digest to resolve. */
  reference: string;
  /** The normalised reference, for messages: "docker.io/library/alpine:latest". */
  display: string;
}

export class ImageRefError extends Error {
  override readonly name = 'ImageRefError';
}

export function parseImageRef(text: string): ImageRef {
  const input = text.trim();
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new ImageRefError(`${input}: expected a digest like sha256:<64 hex> after @, got ${JSON.stringify(digest)}`);
  }
  // The first component names a registry only if it looks like a host (Docker's rule): a dot, a port, or localhost.
  const slash = rest.indexOf('/');
  const first = slash > 0 ? rest.slice(0, slash) : '';
  let registry = 'docker.io';
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first.toLowerCase();
    rest = rest.slice(slash + 1);
  }
  if (registry === 'index.docker.io') registry = 'docker.io';
  // A tag is a colon in the last path component (a colon before a slash is a registry port, handled above).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw new ImageRefError(`${input}: invalid tag ${JSON.stringify(tag)}`);
  }
  let repo = rest;
  if (registry === 'docker.io' && !repo.includes('/')) repo = `library/${repo}`;
  if (!isName(repo)) throw new ImageRefError(`${input}: invalid repository name ${JSON.stringify(repo)} (lowercase letters, digits and . _ - / only)`);
  const reference = digest ?? tag ?? 'latest';
  const display = `${registry}/${repo}${digest ? `@${digest}` : `:${reference}`}`;
  return { registry, repo, reference, display };
}

/** An image list file: one reference per line; blank lines and `#` comments are ignored. */
export function parseImageList(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l.length > 0);
}

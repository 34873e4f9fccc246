// What a cached image consists of, read from the stores: the manifests below a digest (an index's children that
// are cached) and the blobs they name, with the platforms they are for. Lenient: a manifest the store does not
// hold, or cannot parse, simply contributes nothing (a tag may point at an index only partly cached).
import type { BlobStore } from './blob-store.js';
import type { ManifestStore } from './manifest-store.js';

export interface ImageTree {
  manifests: Map<string, number>;
  /** Blob digest → size as the manifest gives it. */
  blobs: Map<string, number>;
  platforms: string[];
}

interface PlatformFields { os?: unknown; architecture?: unknown; variant?: unknown }

interface Doc {
  manifests?: { digest?: unknown; platform?: PlatformFields }[];
  config?: { digest?: unknown; size?: unknown };
  layers?: { digest?: unknown; size?: unknown; urls?: unknown }[];
}

const CONFIG_READ_LIMIT = 1024 * 1024;

function platformText(p: PlatformFields | undefined): string | undefined {
  if (!p || typeof p.os !== 'string' || typeof p.architecture !== 'string') return undefined;
  return [p.os, p.architecture, ...(typeof p.variant === 'string' && p.variant ? [p.variant] : [])].join('/');
}

export async function imageTree(digest: string, manifests: ManifestStore, blobs: BlobStore): Promise<ImageTree> {
  const tree: ImageTree = { manifests: new Map(), blobs: new Map(), platforms: [] };
  const visit = async (d: string, depth: number, platform: string | undefined): Promise<void> => {
    if (tree.manifests.has(d) || depth > 3) return;
    const m = await manifests.get(d);
    if (!m) return;
    tree.manifests.set(d, m.size);
    let doc: Doc;
    try { doc = JSON.parse(m.body.toString('utf8')) as Doc; } catch { return; }
    if (Array.isArray(doc.manifests)) {
      for (const child of doc.manifests) {
        if (typeof child.digest !== 'string' || !(await manifests.head(child.digest))) continue;
        await visit(child.digest, depth + 1, platformText(child.platform));
      }
      return;
    }
    const parts = [...(doc.config ? [doc.config] : []), ...(Array.isArray(doc.layers) ? doc.layers : [])];
    for (const p of parts) if (typeof p.digest === 'string' && typeof p.size === 'number') tree.blobs.set(p.digest, p.size);
    const own = platform ?? (doc.config && typeof doc.config.digest === 'string' ? await configPlatform(doc.config.digest, blobs) : undefined);
    if (own && !tree.platforms.includes(own)) tree.platforms.push(own);
  };
  await visit(digest, 0, undefined);
  return tree;
}

/**
 * A single-platform image says its platform in its config only. A config that is not cached, or is not JSON, says
 * nothing; a store that cannot be read is an error (EACCES or EIO is no "unknown platform").
 */
async function configPlatform(digest: string, blobs: BlobStore): Promise<string | undefined> {
  const s = await blobs.stat(digest);
  if (!s || s.size > CONFIG_READ_LIMIT) return undefined;
  const data = await blobs.readAll(digest);
  try { return data ? platformText(JSON.parse(data.toString('utf8')) as PlatformFields) : undefined; } catch { return undefined; }
}

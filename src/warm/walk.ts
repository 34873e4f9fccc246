// Warming one image: resolve the reference, walk index → platform manifests → config and layer blobs, and pull
// each blob through the proxy once. The walk is the same for every client of the proxy; only progress differs.
import type { FetchedManifest } from './proxy-client.js';
import { WarmError } from './proxy-client.js';
import type { ImageRef } from './reference.js';

export interface Platform { os: string; architecture: string; variant?: string }

/** Which children of an index to warm: the listed platforms, or every one (`--all-platforms`). */
export type PlatformFilter = { all: true } | { all: false; platforms: Platform[] };

export interface WarmPlan { manifests: number; blobs: number; bytes: number; platforms: string[]; missing: string[] }

export interface WarmProgress {
  planned(plan: WarmPlan): void;
  bytes(n: number): void;
  blobDone(digest: string, size: number): void;
}

/** Where a walk gets manifests and blobs: a running proxy over HTTP (ProxyClient), or the cache in-process (export). */
export interface ImageSource {
  /** The manifest a tag or digest resolves to, its bytes checked against the digest. */
  manifest(ref: ImageRef, reference?: string): Promise<FetchedManifest>;
  /** Makes sure the blob is fetched (and cached), reporting bytes as they arrive; resolves to its size. */
  blob(ref: ImageRef, digest: string, onBytes: (n: number) => void): Promise<number>;
}

export interface WarmResult {
  digest: string;
  plan: WarmPlan;
  bytes: number;
  /** Every manifest walked, the top one first, each parent before its children. */
  manifests: FetchedManifest[];
  /** Every blob (configs and layers) with its size, in walk order. */
  blobs: Map<string, number>;
}

interface Descriptor { mediaType?: string; digest: string; size: number; platform?: Platform; urls?: string[] }
interface ManifestDoc { schemaVersion?: number; mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]; fsLayers?: { blobSum: string }[] }

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const BLOB_CONCURRENCY = 3;
const MAX_DEPTH = 3;

/** `linux/arm64/v8` → a platform; containerd's spelling. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.trim().split('/');
  if (!os || !architecture || extra !== undefined) throw new WarmError(`expected a platform like linux/amd64 or linux/arm/v7, got ${JSON.stringify(text)}`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

/** The platform this machine would pull, as containerd names it (Node's arch names differ for x64, ia32, ppc64). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

/** A platform without a variant matches any variant of its architecture (arm64 images say v8 or nothing). */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have || want.os !== have.os || want.architecture !== have.architecture) return false;
  return want.variant === undefined || want.variant === (have.variant ?? (have.architecture === 'arm64' ? 'v8' : undefined));
}

export async function warmImage(client: ImageSource, ref: ImageRef, filter: PlatformFilter, progress: WarmProgress): Promise<WarmResult> {
  const top = await client.manifest(ref);
  const blobs = new Map<string, number>();
  const chosen: string[] = [];
  const matched = new Set<string>();
  let manifests = 1;
  const walked: FetchedManifest[] = [];

  const visit = async (m: FetchedManifest, depth: number): Promise<void> => {
    walked.push(m);
    const doc = parseManifest(m);
    if (doc.manifests) {
      if (depth >= MAX_DEPTH) throw new WarmError(`manifest ${m.digest}: indexes nested deeper than ${MAX_DEPTH}`);
      for (const child of doc.manifests) {
        if (!filter.all) {
          const want = filter.platforms.find((p) => platformMatches(p, child.platform));
          if (!want) continue;
          matched.add(formatPlatform(want));
        }
        if (child.platform) chosen.push(formatPlatform(child.platform));
        manifests++;
        await visit(await client.manifest(ref, child.digest), depth + 1);
      }
      return;
    }
    for (const d of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
      // Foreign (non-distributable) layers live at their `urls`, not in any registry.
      if (!d.urls?.length) blobs.set(d.digest, d.size);
    }
    for (const l of doc.fsLayers ?? []) if (!blobs.has(l.blobSum)) blobs.set(l.blobSum, 0);
  };
  await visit(top, 0);

  const missing = filter.all || !parseManifest(top).manifests ? [] : filter.platforms.map(formatPlatform).filter((p) => !matched.has(p));
  if (!filter.all && parseManifest(top).manifests && matched.size === 0) {
    throw new WarmError(`no manifest for ${missing.join(', ')} in the index (it has ${listPlatforms(top).join(', ') || 'no platforms'})`);
  }
  const plan: WarmPlan = { manifests, blobs: blobs.size, bytes: [...blobs.values()].reduce((a, b) => a + b, 0), platforms: chosen, missing };
  progress.planned(plan);

  let bytes = 0;
  const queue = [...blobs.keys()];
  const worker = async (): Promise<void> => {
    for (let digest = queue.shift(); digest !== undefined; digest = queue.shift()) {
      const size = await client.blob(ref, digest, (n) => { bytes += n; progress.bytes(n); });
      progress.blobDone(digest, size);
    }
  };
  await Promise.all(Array.from({ length: Math.min(BLOB_CONCURRENCY, queue.length) }, worker));
  return { digest: top.digest, plan, bytes, manifests: walked, blobs };
}

function parseManifest(m: FetchedManifest): ManifestDoc {
  let doc: ManifestDoc;
  try { doc = JSON.parse(m.body.toString('utf8')) as ManifestDoc; } catch {
    throw new WarmError(`manifest ${m.digest} (${m.mediaType}) is not JSON`);
  }
  if (!doc.manifests && INDEX_TYPES.has(m.mediaType)) throw new WarmError(`index ${m.digest} has no manifests list`);
  return doc;
}

function listPlatforms(m: FetchedManifest): string[] {
  return (parseManifest(m).manifests ?? []).flatMap((c) => (c.platform ? [formatPlatform(c.platform)] : []));
}

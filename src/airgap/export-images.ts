// `ocimirror export`: first every image is walked through the cache (index → platform manifests → config and
// layers), pulling what is missing through the configured upstreams with warm's progress display; only when all
// of them are complete is the archive written, from the cache, manifests and blobs byte for byte.
import { ArchiveError } from '../archive/archive-error.js';
import { blobPath } from '../archive/entry-names.js';
import { dockerManifestJson, dockerRepositories, OCI_LAYOUT, ociIndexJson, type DockerImage, type LayoutImage } from '../archive/export-layout.js';
import { parseManifestDoc } from '../archive/layout-json.js';
import type { TarOutput } from '../archive/tar-output.js';
import { isDigest } from '../oci/names.js';
import { imageReporter, type ImageOutcome, type Output } from '../warm/progress.js';
import type { ImageRef } from '../warm/reference.js';
import { warmImage, type PlatformFilter, type WarmResult } from '../warm/walk.js';
import { BufferRelease } from './buffer-release.js';
import type { CacheSource } from './cache-source.js';

export type ExportFormat = 'oci' | 'docker';

export interface CollectedImage { ref: ImageRef; result: WarmResult }

/** Phase one: every image complete in the cache (pulled where needed), with progress; one outcome per image. */
export async function collectImages(source: CacheSource, refs: ImageRef[], filter: PlatformFilter, format: ExportFormat, progress: Output): Promise<{ outcomes: ImageOutcome[]; images: CollectedImage[] }> {
  const outcomes: ImageOutcome[] = [];
  const images: CollectedImage[] = [];
  for (const ref of refs) {
    const reporter = imageReporter(progress, ref.display);
    const t0 = Date.now();
    let outcome: ImageOutcome;
    try {
      const result = await warmImage(source, ref, filter, reporter);
      if (format === 'docker') dockerImage(ref, result);
      images.push({ ref, result });
      outcome = { image: ref.display, ok: true, digest: result.digest, blobs: result.plan.blobs, bytes: result.plan.bytes, ms: Date.now() - t0, missing: result.plan.missing };
    } catch (e) {
      outcome = { image: ref.display, ok: false, blobs: 0, bytes: 0, ms: Date.now() - t0, error: (e as Error).message };
    }
    reporter.done(outcome);
    outcomes.push(outcome);
  }
  return { outcomes, images };
}

/** Phase two: the archive, from the cache. Each manifest and blob is written once however many images share it. */
export async function writeArchive(out: TarOutput, images: CollectedImage[], format: ExportFormat, source: CacheSource): Promise<void> {
  const written = new Set<string>();
  const release = new BufferRelease();
  if (format === 'oci') {
    const tops: LayoutImage[] = images.map(({ ref, result }) => {
      const top = result.manifests[0] as WarmResult['manifests'][number];
      return { name: ref.display, digest: top.digest, mediaType: top.mediaType, size: top.body.length };
    });
    await out.addBuffer('oci-layout', OCI_LAYOUT);
    await out.addBuffer('index.json', ociIndexJson(tops));
    for (const { result } of images) {
      for (const m of result.manifests) if (!written.has(m.digest)) { written.add(m.digest); await out.addBuffer(blobPath(m.digest), m.body); }
    }
  } else {
    const items = images.map(({ ref, result }) => dockerImage(ref, result));
    await out.addBuffer('manifest.json', dockerManifestJson(items));
    await out.addBuffer('repositories', dockerRepositories(items));
  }
  for (const { ref, result } of images) {
    const docker = format === 'docker' ? dockerImage(ref, result) : undefined;
    const blobs = docker ? [docker.config, ...docker.layers] : [...result.blobs.keys()];
    for (const digest of blobs) {
      if (written.has(digest)) continue;
      written.add(digest);
      await out.addStream(blobPath(digest), result.blobs.get(digest) as number, await source.open(ref, digest), (n) => release.add(n));
    }
  }
}

/** A docker save item holds one platform's image: the one manifest the walk chose. */
function dockerImage(ref: ImageRef, result: WarmResult): DockerImage {
  const images = result.manifests.flatMap((m) => {
    const doc = parseManifestDoc(m.body, `manifest ${m.digest}`);
    return doc.kind === 'image' ? [doc] : [];
  });
  const [doc] = images;
  if (images.length !== 1 || !doc) {
    throw new ArchiveError(undefined, `--format docker holds one platform per image, and ${ref.display} has ${images.length} here (${result.plan.platforms.join(', ')}): choose one with --platform`);
  }
  return { ...(isDigest(ref.reference) ? {} : { name: ref.display }), config: doc.config.digest, layers: doc.layers.map((l) => l.digest) };
}

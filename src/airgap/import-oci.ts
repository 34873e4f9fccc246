// Images of an OCI layout (skopeo oci-archive:, ctr export, docker save since Docker 25, ocimirror export): each
// manifest index.json names, walked down to its config and layers. Manifests and blobs keep their digests.
import { ArchiveError } from '../archive/archive-error.js';
import { parseIndexJson, parseManifestDoc, type Descriptor, type ManifestDoc } from '../archive/layout-json.js';
import { MAX_MANIFEST_BYTES, manifestMediaType } from '../oci/mediatypes.js';
import { formatPlatform } from '../warm/walk.js';
import type { ArchiveStaging } from './import-staging.js';
import { failure, parseArchiveName, stagedBlob, type ImageOutcome, type PlannedImage, type PlannedManifest } from './import-plan.js';

const MAX_DEPTH = 3;

export async function planOciLayout(staging: ArchiveStaging): Promise<ImageOutcome[]> {
  const index = staging.metadata.get('index.json');
  if (!index) throw new ArchiveError(undefined, 'no index.json: not an OCI layout');
  const tops = parseIndexJson(index.data, index.entry);
  if (tops.length === 0) throw new ArchiveError(index.entry, 'names no manifests');
  const outcomes: ImageOutcome[] = [];
  for (const [i, d] of tops.entries()) {
    let label = d.digest;
    try {
      const { names, notes } = namesOf(d, `manifests[${i}]`, index.entry);
      label = names[0]?.display ?? d.digest;
      outcomes.push(await planImage(staging, d, `${index.entry} manifests[${i}]`, label, names, notes));
    } catch (err) {
      outcomes.push(failure(label, err));
    }
  }
  return outcomes;
}

/** io.containerd.image.name is a full reference; ref.name is one too when it has a repository, else a bare tag. */
function namesOf(d: Descriptor, where: string, entry: string): Pick<PlannedImage, 'names' | 'notes'> {
  const a = d.annotations ?? {};
  const full = a['io.containerd.image.name'];
  if (full) return { names: [parseArchiveName(full, `${where} io.containerd.image.name`, entry)], notes: [] };
  const ref = a['org.opencontainers.image.ref.name'];
  if (ref && /[/:@]/.test(ref)) return { names: [parseArchiveName(ref, `${where} org.opencontainers.image.ref.name`, entry)], notes: [] };
  const why = ref ? `its ref.name ${JSON.stringify(ref)} names no repository` : 'index.json gives it no name';
  return { names: [], notes: [`${why}: stored for pulls by digest only`] };
}

async function planImage(staging: ArchiveStaging, top: Descriptor, wanted: string, label: string, names: PlannedImage['names'], notes: string[]): Promise<PlannedImage> {
  const plan: PlannedImage = { ok: true, label, names, top: undefined as unknown as PlannedManifest, manifests: [], blobs: new Map(), skipped: [], notes };
  plan.top = await visit(staging, plan, top, wanted, 0);
  return plan;
}

async function visit(staging: ArchiveStaging, plan: PlannedImage, d: Descriptor, wanted: string, depth: number): Promise<PlannedManifest> {
  const { manifest, doc } = await readManifest(staging, d, wanted);
  if (doc.kind === 'index') {
    if (depth >= MAX_DEPTH) throw new ArchiveError(staging.blobs.get(d.digest)?.entry, `indexes nested deeper than ${MAX_DEPTH}`);
    let present = 0;
    for (const [i, child] of doc.manifests.entries()) {
      // An index whose other platforms were left out (export --platform) is imported with the platforms it has.
      if (!staging.blobs.has(child.digest)) { plan.skipped.push(child.platform ? formatPlatform(child.platform) : child.digest); continue; }
      present++;
      await visit(staging, plan, child, `manifests[${i}] of index ${d.digest}`, depth + 1);
    }
    if (present === 0) throw new ArchiveError(staging.blobs.get(d.digest)?.entry, `none of the ${doc.manifests.length} manifests this index names is in the archive`);
  } else {
    const parts = [['config', doc.config] as const, ...doc.layers.map((l, i) => [`layers[${i}]`, l] as const)];
    for (const [field, blob] of parts) {
      // Foreign layers live at their URLs, not in registries or archives.
      if (blob.urls?.length && !staging.blobs.has(blob.digest)) continue;
      plan.blobs.set(blob.digest, { kind: 'staged', digest: blob.digest, staged: stagedBlob(staging, blob.digest, blob.size, `${field} of manifest ${d.digest}`) });
    }
  }
  if (!plan.manifests.some((m) => m.digest === manifest.digest)) plan.manifests.push(manifest);
  return manifest;
}

async function readManifest(staging: ArchiveStaging, d: Descriptor, wanted: string): Promise<{ manifest: PlannedManifest; doc: ManifestDoc }> {
  const b = stagedBlob(staging, d.digest, d.size, wanted);
  if (b.size > MAX_MANIFEST_BYTES) throw new ArchiveError(b.entry, `a manifest of ${b.size} bytes is more than clients accept (${MAX_MANIFEST_BYTES})`);
  const body = await b.writer.read(0, b.size);
  const doc = parseManifestDoc(body, b.entry);
  // The same rule as for manifests fetched upstream: the bytes decide, the descriptor only when they say nothing.
  const mediaType = manifestMediaType(body, d.mediaType);
  return { manifest: { digest: d.digest, mediaType, body }, doc };
}

// Images of a `docker save` archive (also podman save, skopeo docker-archive:, K3s's k3s-airgap-images-*.tar):
// manifest.json names each image's config and layer members but holds no registry manifest, so one is built as
// the content implies — a Docker schema 2 manifest over the config and the layers exactly as stored. Its digest
// therefore differs from the registry's (whose layers are compressed); tags and this digest work offline.
import { readFile } from 'node:fs/promises';
import { ArchiveError } from '../archive/archive-error.js';
import { parseDockerManifestJson, parseImageConfig, parseRepositories, type DockerArchiveItem } from '../archive/layout-json.js';
import { digestOf } from '../oci/digest.js';
import { MANIFEST_TYPES } from '../oci/mediatypes.js';
import type { ArchiveStaging } from './import-staging.js';
import { failure, memberSource, parseArchiveName, type BlobSource, type ImageOutcome, type PlannedImage } from './import-plan.js';

export const DOCKER_CONFIG_TYPE = 'application/vnd.docker.container.image.v1+json';
const LAYER_TYPES = {
  tar: 'application/vnd.docker.image.rootfs.diff.tar',
  gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  zstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
} as const;
const CONFIG_LIMIT = 4 * 1024 * 1024;

export async function planDockerArchive(staging: ArchiveStaging): Promise<ImageOutcome[]> {
  const manifest = staging.metadata.get('manifest.json');
  if (!manifest) throw new ArchiveError(undefined, 'no manifest.json: not a docker save archive');
  const items = parseDockerManifestJson(manifest.data, manifest.entry);
  const repos = staging.metadata.get('repositories');
  const repositories = repos ? parseRepositories(repos.data, repos.entry) : new Map<string, string>();
  const outcomes: ImageOutcome[] = [];
  for (const [i, item] of items.entries()) {
    let label = item.repoTags[0] ?? `${manifest.entry} [${i}]`;
    try {
      const names = namesOf(item, i, manifest.entry, repositories);
      label = names[0]?.display ?? label;
      outcomes.push(await planItem(staging, item, `${manifest.entry} [${i}]`, label, names));
    } catch (err) {
      outcomes.push(failure(label, err));
    }
  }
  return outcomes;
}

/** RepoTags; without them, the legacy `repositories` entries whose id is the top layer's directory. */
function namesOf(item: DockerArchiveItem, i: number, entry: string, repositories: Map<string, string>): PlannedImage['names'] {
  if (item.repoTags.length) return item.repoTags.map((t, j) => parseArchiveName(t, `[${i}].RepoTags[${j}]`, entry));
  const topDir = item.layers.at(-1)?.split('/')[0];
  return [...repositories].filter(([, id]) => id === topDir).map(([name]) => parseArchiveName(name, 'repositories', 'repositories'));
}

async function planItem(staging: ArchiveStaging, item: DockerArchiveItem, where: string, label: string, names: PlannedImage['names']): Promise<PlannedImage> {
  const config = memberSource(staging, item.config, `${where}.Config`);
  const configBytes = await readSmall(config, item.config);
  const { diffIds } = parseImageConfig(configBytes, item.config);
  if (diffIds.length !== item.layers.length) {
    throw new ArchiveError(item.config, `rootfs.diff_ids lists ${diffIds.length} layers, but ${where}.Layers names ${item.layers.length}`);
  }
  const blobs = new Map<string, BlobSource>([[config.digest, config]]);
  const layers = [];
  for (const [j, name] of item.layers.entries()) {
    const source = memberSource(staging, name, `${where}.Layers[${j}]`);
    const compression = await compressionOf(source);
    checkDiffId(source, compression, diffIds[j] as string, name, `rootfs.diff_ids[${j}] of ${item.config}`);
    blobs.set(source.digest, source);
    layers.push({ mediaType: LAYER_TYPES[compression], size: sizeOf(source), digest: source.digest });
  }
  // Field order and indentation as Docker's own schema 2 manifests (json.MarshalIndent with three spaces).
  const body = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPES.dockerV2,
    config: { mediaType: DOCKER_CONFIG_TYPE, size: configBytes.length, digest: config.digest },
    layers,
  }, null, 3));
  const top = { digest: digestOf(body), mediaType: MANIFEST_TYPES.dockerV2, body };
  const notes = names.length ? [] : ['manifest.json gives it no RepoTags: stored for pulls by digest only'];
  return { ok: true, label, names, top, manifests: [top], blobs, skipped: [], notes };
}

function sizeOf(s: BlobSource): number {
  return s.kind === 'staged' ? s.staged.size : s.spooled.size;
}

async function readSmall(s: BlobSource, name: string): Promise<Buffer> {
  const size = sizeOf(s);
  if (size > CONFIG_LIMIT) throw new ArchiveError(name, `an image config of ${size} bytes is larger than ocimirror reads (${CONFIG_LIMIT})`);
  return s.kind === 'staged' ? s.staged.writer.read(0, size) : readFile(s.spooled.file);
}

async function compressionOf(s: BlobSource): Promise<keyof typeof LAYER_TYPES> {
  const head = s.kind === 'staged' ? await s.staged.writer.read(0, 4) : s.spooled.head;
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length === 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'tar';
}

/**
 * A layer must be what the config says it is: its bytes (uncompressed) or their gunzipped form hash to the diff id.
 * Members named by digest were already checked against their name; for them the compressed form is not unpacked.
 */
function checkDiffId(s: BlobSource, compression: keyof typeof LAYER_TYPES, diffId: string, name: string, wanted: string): void {
  if (compression === 'tar') {
    if (s.digest !== diffId) throw new ArchiveError(name, `content (${s.digest}) does not match ${wanted} (${diffId})`);
    return;
  }
  if (s.kind !== 'spooled') return;
  if (s.spooled.gzipProblem) throw new ArchiveError(name, `damaged gzip stream (${s.spooled.gzipProblem})`);
  if (compression === 'gzip' && s.spooled.gunzippedDigest !== diffId) {
    throw new ArchiveError(name, `content unpacks to ${s.spooled.gunzippedDigest}, but ${wanted} is ${diffId}`);
  }
}

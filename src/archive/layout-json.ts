// Parsers for the JSON an image archive carries: an OCI layout's index.json and the manifests it names,
// docker-archive's manifest.json and repositories, and image configs. Everything is checked field by field;
// a problem is an ArchiveError naming the entry and the field ("index.json: manifests[1].digest: expected …").
import { isDigest, isTag } from '../oci/names.js';
import { ArchiveError } from './archive-error.js';

export interface Platform { os: string; architecture: string; variant?: string }

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export type ManifestDoc =
  | { kind: 'index'; manifests: Descriptor[] }
  | { kind: 'image'; config: Descriptor; layers: Descriptor[] };

export interface DockerArchiveItem { config: string; repoTags: string[]; layers: string[] }

type Obj = Record<string, unknown>;

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

class Fields {
  constructor(readonly entry: string) {}
  fail(path: string, expected: string, got: unknown): never {
    throw new ArchiveError(this.entry, `${path ? `${path}: ` : ''}expected ${expected}, got ${show(got)}`);
  }
  obj(v: unknown, path: string): Obj {
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : this.fail(path, 'an object', v);
  }
  arr(v: unknown, path: string): unknown[] {
    return Array.isArray(v) ? v : this.fail(path, 'an array', v);
  }
  str(v: unknown, path: string): string {
    return typeof v === 'string' ? v : this.fail(path, 'a string', v);
  }
  strings(v: unknown, path: string): string[] {
    return this.arr(v, path).map((s, i) => this.str(s, `${path}[${i}]`));
  }
  digest(v: unknown, path: string): string {
    return typeof v === 'string' && isDigest(v) ? v : this.fail(path, 'a digest like sha256:<64 hex>', v);
  }
  size(v: unknown, path: string): number {
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : this.fail(path, 'a size in bytes', v);
  }
  platform(v: unknown, path: string): Platform | undefined {
    if (v === undefined) return undefined;
    const p = this.obj(v, path);
    const variant = p.variant === undefined ? undefined : this.str(p.variant, `${path}.variant`);
    return { os: this.str(p.os, `${path}.os`), architecture: this.str(p.architecture, `${path}.architecture`), ...(variant ? { variant } : {}) };
  }
  descriptor(v: unknown, path: string): Descriptor {
    const d = this.obj(v, path);
    const annotations = d.annotations === undefined ? undefined : this.annotations(d.annotations, `${path}.annotations`);
    const platform = this.platform(d.platform, `${path}.platform`);
    const urls = d.urls === undefined ? undefined : this.strings(d.urls, `${path}.urls`);
    return {
      mediaType: d.mediaType === undefined ? '' : this.str(d.mediaType, `${path}.mediaType`),
      digest: this.digest(d.digest, `${path}.digest`),
      size: this.size(d.size, `${path}.size`),
      ...(annotations ? { annotations } : {}), ...(platform ? { platform } : {}), ...(urls?.length ? { urls } : {}),
    };
  }
  annotations(v: unknown, path: string): Record<string, string> {
    const o = this.obj(v, path);
    return Object.fromEntries(Object.entries(o).map(([k, s]) => [k, this.str(s, `${path}.${k}`)]));
  }
}

export function parseJson(entry: string, data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8')) as unknown;
  } catch (e) {
    throw new ArchiveError(entry, `not valid JSON (${(e as Error).message})`);
  }
}

/** The manifests an OCI layout's index.json names. */
export function parseIndexJson(data: Buffer, entry = 'index.json'): Descriptor[] {
  const f = new Fields(entry);
  const doc = f.obj(parseJson(entry, data), '');
  if (doc.schemaVersion !== 2) f.fail('schemaVersion', '2', doc.schemaVersion);
  return f.arr(doc.manifests, 'manifests').map((d, i) => f.descriptor(d, `manifests[${i}]`));
}

/** An index (OCI index or Docker manifest list) or an image manifest (OCI or Docker schema 2). */
export function parseManifestDoc(data: Buffer, entry: string): ManifestDoc {
  const f = new Fields(entry);
  const doc = f.obj(parseJson(entry, data), '');
  if (doc.schemaVersion !== 2) f.fail('schemaVersion', '2 (schema 1 manifests cannot be imported)', doc.schemaVersion);
  if (doc.manifests !== undefined) return { kind: 'index', manifests: f.arr(doc.manifests, 'manifests').map((d, i) => f.descriptor(d, `manifests[${i}]`)) };
  return {
    kind: 'image',
    config: f.descriptor(doc.config, 'config'),
    layers: f.arr(doc.layers, 'layers').map((d, i) => f.descriptor(d, `layers[${i}]`)),
  };
}

/** docker-archive's manifest.json: one item per image, with member names of its config and layers. */
export function parseDockerManifestJson(data: Buffer, entry = 'manifest.json'): DockerArchiveItem[] {
  const f = new Fields(entry);
  return f.arr(parseJson(entry, data), '').map((v, i) => {
    const item = f.obj(v, `[${i}]`);
    return {
      config: f.str(item.Config, `[${i}].Config`),
      repoTags: item.RepoTags === undefined || item.RepoTags === null ? [] : f.strings(item.RepoTags, `[${i}].RepoTags`),
      layers: f.strings(item.Layers, `[${i}].Layers`),
    };
  });
}

/** `repositories` (legacy docker save): "name:tag" → the v1 id of the image's top layer. */
export function parseRepositories(data: Buffer, entry = 'repositories'): Map<string, string> {
  const f = new Fields(entry);
  const out = new Map<string, string>();
  for (const [repo, tags] of Object.entries(f.obj(parseJson(entry, data), ''))) {
    for (const [tag, id] of Object.entries(f.obj(tags, repo))) {
      if (!isTag(tag)) f.fail(`${repo}.${tag}`, 'a tag', tag);
      out.set(`${repo}:${tag}`, f.str(id, `${repo}.${tag}`));
    }
  }
  return out;
}

/** What an image config says about its layers and platform. */
export function parseImageConfig(data: Buffer, entry: string): { diffIds: string[]; platform?: Platform } {
  const f = new Fields(entry);
  const doc = f.obj(parseJson(entry, data), '');
  const rootfs = f.obj(doc.rootfs, 'rootfs');
  const diffIds = f.arr(rootfs.diff_ids, 'rootfs.diff_ids').map((d, i) => f.digest(d, `rootfs.diff_ids[${i}]`));
  const platform = typeof doc.os === 'string' && typeof doc.architecture === 'string'
    ? { os: doc.os, architecture: doc.architecture, ...(typeof doc.variant === 'string' ? { variant: doc.variant } : {}) }
    : undefined;
  return { diffIds, ...(platform ? { platform } : {}) };
}

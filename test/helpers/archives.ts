// Image archives written by hand for the import tests: an OCI layout or a classic `docker save` (layers at
// <id>/layer.tar, uncompressed), with parts left out or damaged on request. Members are written in the order given.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import type { BuiltImage } from './images.js';

export interface ArchiveMemberSpec { name: string; data?: Buffer; linkname?: string }

export async function writeTar(file: string, members: ArchiveMemberSpec[], opts: { gzip?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack();
  for (const m of members) {
    if (m.linkname !== undefined) pack.entry({ name: m.name, type: 'symlink', linkname: m.linkname });
    else pack.entry({ name: m.name, size: (m.data as Buffer).length }, m.data as Buffer);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const bytes = opts.gzip ? zlib.gzipSync(Buffer.concat(chunks)) : Buffer.concat(chunks);
  writeFileSync(file, bytes);
  return bytes;
}

const path = (digest: string) => `blobs/sha256/${digest.slice(7)}`;

/** An OCI layout of the images, each named by io.containerd.image.name. */
export function ociLayoutMembers(images: { name: string; image: BuiltImage }[]): ArchiveMemberSpec[] {
  const index = {
    schemaVersion: 2,
    manifests: images.map(({ name, image }) => ({ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, annotations: { 'io.containerd.image.name': name } })),
  };
  const members: ArchiveMemberSpec[] = [{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }];
  const seen = new Set<string>();
  for (const { image } of images) {
    for (const [digest, data] of [[image.manifestDigest, image.manifest] as const, ...image.blobs.map((b) => [b.digest, b.data as Buffer] as const)]) {
      if (!seen.has(digest)) { seen.add(digest); members.push({ name: path(digest), data }); }
    }
  }
  members.push({ name: 'index.json', data: Buffer.from(JSON.stringify(index)) });
  return members;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A classic `docker save` archive (Docker before 25): <v1 id>/layer.tar uncompressed, <config hex>.json,
 * manifest.json and repositories last. A layer two images share is a symbolic link the second time, as Docker writes.
 */
export function dockerSaveMembers(images: { tag: string; image: BuiltImage }[]): ArchiveMemberSpec[] {
  const members: ArchiveMemberSpec[] = [];
  const manifest = [];
  const repositories: Record<string, Record<string, string>> = {};
  const layerDir = new Map<string, string>();
  for (const [i, { tag, image }] of images.entries()) {
    const layers: string[] = [];
    for (const [j, l] of image.layers.entries()) {
      const raw = zlib.gunzipSync(l.data as Buffer);
      const id = sha(Buffer.from(`${i}/${j}/${sha(raw)}`));
      const known = layerDir.get(sha(raw));
      members.push({ name: `${id}/VERSION`, data: Buffer.from('1.0') }, { name: `${id}/json`, data: Buffer.from(JSON.stringify({ id })) });
      if (known) members.push({ name: `${id}/layer.tar`, linkname: `../${known}/layer.tar` });
      else { members.push({ name: `${id}/layer.tar`, data: raw }); layerDir.set(sha(raw), id); }
      layers.push(`${id}/layer.tar`);
    }
    members.push({ name: `${image.config.digest.slice(7)}.json`, data: image.config.data as Buffer });
    manifest.push({ Config: `${image.config.digest.slice(7)}.json`, RepoTags: [tag], Layers: layers });
    const [repo, t] = tag.split(':') as [string, string];
    (repositories[repo] ??= {})[t] = (layers.at(-1) as string).split('/')[0] as string;
  }
  members.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) }, { name: 'repositories', data: Buffer.from(JSON.stringify(repositories)) });
  return members;
}

/** The same bytes with one bit flipped in the middle. */
export function flipByte(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  const at = Math.floor(copy.length / 2);
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

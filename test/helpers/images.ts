import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';

export interface Blob { digest: string; size: number; mediaType: string; data?: Buffer; file?: string }
export interface Platform { os: string; architecture: string; variant?: string }
export interface BuiltImage { manifest: Buffer; manifestDigest: string; mediaType: string; config: Blob; layers: Blob[]; blobs: Blob[] }
export interface BuiltIndex { manifest: Buffer; manifestDigest: string; mediaType: string; images: { platform: Platform; image: BuiltImage }[] }
export type ImageFormat = 'oci' | 'docker';

export const MEDIA_TYPES = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
    layerTar: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    layerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  },
} as const;

// A fixed timestamp keeps tar headers, configs and therefore digests reproducible across runs.
const EPOCH = new Date('2024-01-01T00:00:00Z');

export function sha256(data: Buffer | string): string {
  return 'sha256:' + crypto.createHash('sha256').update(data).digest('hex');
}

/** The default small image: two layers, the second whites out a file of the first (exercises unpack). */
export function defaultLayers(label = 'default'): Record<string, string | Buffer>[] {
  return [
    { 'hello.txt': `hello from ocimirror (${label})\n`, 'etc/motd': 'to be deleted\n' },
    { 'etc/.wh.motd': '', 'etc/greeting': `layer two (${label})\n` },
  ];
}

function parentDirs(files: string[]): string[] {
  const dirs = new Set<string>();
  for (const file of files) {
    const parts = file.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/') + '/');
  }
  return [...dirs].sort();
}

const header = (name: string, type: 'file' | 'directory', size = 0): tar.Header => ({
  name, type, size, linkname: '', devmajor: 0, devminor: 0, mode: type === 'directory' ? 0o755 : 0o644, mtime: EPOCH, uid: 0, gid: 0, uname: 'root', gname: 'root',
});

/** An uncompressed tar of the given files, with parent directory entries first (some unpackers need them). */
async function tarFiles(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const dir of parentDirs(Object.keys(files))) pack.entry(header(dir, 'directory'));
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content);
    pack.entry(header(name, 'file', data.length), data);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function imageConfig(platform: Platform, label: string, diffIds: string[]): Buffer {
  const config = {
    created: EPOCH.toISOString(),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Cmd: ['/bin/sh'], Labels: { 'org.ocimirror.test': label } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: EPOCH.toISOString(), created_by: `ocimirror test layer ${i}` })),
  };
  return Buffer.from(JSON.stringify(config));
}

const descriptor = (blob: Blob) => ({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size });

function assemble(format: ImageFormat, platform: Platform, label: string, layers: { blob: Blob; diffId: string }[]): BuiltImage {
  const types = MEDIA_TYPES[format];
  const configData = imageConfig(platform, label, layers.map((l) => l.diffId));
  const config: Blob = { digest: sha256(configData), size: configData.length, mediaType: types.config, data: configData };
  const layerBlobs = layers.map((l) => l.blob);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: types.manifest, config: descriptor(config), layers: layerBlobs.map(descriptor),
  }));
  return { manifest, manifestDigest: sha256(manifest), mediaType: types.manifest, config, layers: layerBlobs, blobs: [config, ...layerBlobs] };
}

export async function buildImage(opts: { format: ImageFormat; files?: Record<string, string | Buffer>[]; platform?: Platform; label?: string }): Promise<BuiltImage> {
  const label = opts.label ?? 'default';
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers = [];
  for (const files of opts.files ?? defaultLayers(label)) {
    const tarData = await tarFiles(files);
    const gz = zlib.gzipSync(tarData);
    const blob: Blob = { digest: sha256(gz), size: gz.length, mediaType: MEDIA_TYPES[opts.format].layerGzip, data: gz };
    layers.push({ blob, diffId: sha256(tarData) });
  }
  return assemble(opts.format, platform, label, layers);
}

/** An OCI index or Docker manifest list; each platform gets its own small image with distinct layers. */
export async function buildIndex(opts: { format: ImageFormat; platforms: Platform[]; label?: string }): Promise<BuiltIndex> {
  const label = opts.label ?? 'index';
  const images = [];
  for (const platform of opts.platforms) {
    const name = [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
    images.push({ platform, image: await buildImage({ format: opts.format, platform, label: `${label} ${name}` }) });
  }
  const mediaType = MEDIA_TYPES[opts.format].index;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    manifests: images.map(({ platform, image }) => ({
      mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, platform,
    })),
  }));
  return { manifest, manifestDigest: sha256(manifest), mediaType, images };
}

/** A pass-through stream that hashes and counts what flows through it. */
class HashTap extends Transform {
  readonly hash = crypto.createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.push(chunk);
    done();
  }
  digest(): string { return 'sha256:' + this.hash.digest('hex'); }
}

/**
 * A one-layer image whose layer holds `sizeBytes` of seeded pseudo-random data (AES-CTR keystream: fast and
 * reproducible), streamed through tar (+ gzip level 1) into a file in `dir`; memory use stays at one chunk.
 */
export async function buildLargeLayerImage(opts: { format: ImageFormat; sizeBytes: number; seed?: number; dir: string; compression?: 'gzip' | 'none'; label?: string }): Promise<BuiltImage> {
  const seed = opts.seed ?? crypto.randomInt(2 ** 31);
  const gzip = (opts.compression ?? 'gzip') === 'gzip';
  const key = crypto.createHash('sha256').update(`ocimirror-seed-${seed}`).digest().subarray(0, 16);
  const keystream = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const pack = tar.pack();
  const diffTap = new HashTap();
  const blobTap = new HashTap();
  const tmpFile = path.join(opts.dir, `layer-${seed}-${opts.sizeBytes}-${process.pid}-${Date.now()}.partial`);
  const source = async function* (): AsyncGenerator<Buffer> { for await (const chunk of pack) yield chunk as Buffer; };
  const out = fs.createWriteStream(tmpFile);
  const done = gzip ? pipeline(source, diffTap, zlib.createGzip({ level: 1 }), blobTap, out) : pipeline(source, diffTap, blobTap, out);

  const hello = Buffer.from(`large layer, seed ${seed}\n`);
  await new Promise<void>((resolve, reject) => pack.entry(header('hello.txt', 'file', hello.length), hello, (err) => (err ? reject(err) : resolve())));
  const entryDone = new Promise<void>((resolve, reject) => {
    const entry = pack.entry(header('large.bin', 'file', opts.sizeBytes), (err) => (err ? reject(err) : resolve()));
    const zeros = Buffer.alloc(1 << 20);
    const writeAll = async () => {
      for (let left = opts.sizeBytes; left > 0; left -= zeros.length) {
        const chunk = keystream.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
        if (!entry.write(chunk)) await new Promise<void>((r) => entry.once('drain', () => r()));
      }
      entry.end(undefined); // streamx's typings require the (optional) argument
    };
    writeAll().catch(reject);
  });
  await entryDone;
  pack.finalize();
  await done;

  const digest = blobTap.digest();
  const file = path.join(opts.dir, digest.replace(':', '-'));
  await fs.promises.rename(tmpFile, file);
  const types = MEDIA_TYPES[opts.format];
  const blob: Blob = { digest, size: blobTap.bytes, mediaType: gzip ? types.layerGzip : types.layerTar, file };
  return assemble(opts.format, { os: 'linux', architecture: 'amd64' }, opts.label ?? `large ${seed}`, [{ blob, diffId: diffTap.digest() }]);
}

/** Bytes of a blob, from memory or from its file (only for small blobs and tests that really need them). */
export async function blobBytes(blob: Blob): Promise<Buffer> {
  if (blob.data) return blob.data;
  if (blob.file) return fs.promises.readFile(blob.file);
  throw new Error(`blob ${blob.digest} has neither data nor file`);
}

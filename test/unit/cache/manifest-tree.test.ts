// imageTree, what `cache list | rm | prune` see of an image: its manifests, blobs and platforms from the stores.
// Lenient about what is not cached; a store that cannot be read is an error, never an image without a platform.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsManifestStore } from '../../../src/cache/fs-manifest-store.js';
import { FsBlobStore } from '../../../src/cache/fs-store.js';
import { imageTree } from '../../../src/cache/manifest-tree.js';
import { buildImage, type BuiltImage } from '../../helpers/images.js';
import { makeTmpDir, removeTmpDir } from '../../helpers/tmp.js';

let dir: string;
let manifests: FsManifestStore;
let blobs: FsBlobStore;
let image: BuiltImage;

beforeEach(async () => {
  dir = makeTmpDir('ocimirror-tree-');
  manifests = new FsManifestStore(dir, pino({ level: 'silent' }));
  blobs = new FsBlobStore(dir);
  await Promise.all([manifests.init(), blobs.init()]);
  image = await buildImage({ format: 'oci', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, label: 'tree' });
  await manifests.put(image.manifestDigest, image.mediaType, image.manifest);
});

afterEach(async () => {
  await removeTmpDir(dir);
});

describe('imageTree', () => {
  it('names the manifest, every blob, and the platform its cached config gives', async () => {
    await blobs.put(image.config.digest, image.config.data!);
    const tree = await imageTree(image.manifestDigest, manifests, blobs);
    expect([...tree.manifests.keys()]).toEqual([image.manifestDigest]);
    expect([...tree.blobs.keys()]).toEqual(image.blobs.map((b) => b.digest));
    expect(tree.platforms).toEqual(['linux/arm64/v8']);
  });

  it('gives no platform when the config is not cached', async () => {
    expect((await imageTree(image.manifestDigest, manifests, blobs)).platforms).toEqual([]);
  });

  it('fails when the blob store cannot be read, instead of taking it for a config not cached', async () => {
    const failing = Object.assign(Object.create(blobs) as FsBlobStore, {
      stat: () => Promise.reject(Object.assign(new Error('EIO: i/o error, stat'), { code: 'EIO' })),
    });
    await expect(imageTree(image.manifestDigest, manifests, failing)).rejects.toThrow(/EIO/);
  });
});

// The walk's ImageSource for export: manifests and blobs through the CachingService in this process — what the
// cache holds is used as is, what it lacks is pulled through the configured upstreams and stored on the way.
import type { Readable } from 'node:stream';
import type { WorkingCache } from './working-cache.js';
import { OciError } from '../oci/errors.js';
import { normaliseAccept } from '../oci/mediatypes.js';
import { isDigest } from '../oci/names.js';
import { MANIFEST_ACCEPT, WarmError, type FetchedManifest } from '../warm/proxy-client.js';
import type { ImageRef } from '../warm/reference.js';
import type { ImageSource } from '../warm/walk.js';
import { BufferRelease } from './buffer-release.js';

export class CacheSource implements ImageSource {
  // Asked as containerd asks, so the tag mapping used (or created) is the one K3s nodes use.
  private readonly accept = normaliseAccept(MANIFEST_ACCEPT);
  private readonly release = new BufferRelease();

  constructor(private readonly cache: WorkingCache) {}

  /**
   * The request target as the server's route makes it: registry, repository and the registry's mirror entry. A
   * repository the configuration refuses is refused here too, before anything is read or fetched.
   */
  private target(ref: ImageRef) {
    const access = this.cache.access(ref.registry, ref.repo);
    if (!access.allowed) throw new WarmError(`refused by the configuration: ${access.reason}`);
    const mirror = this.cache.mirror(ref.registry);
    if (!mirror) throw new WarmError(`registry ${ref.registry} is not in mirrors: of the configuration`);
    return { registry: ref.registry, repo: ref.repo, mirror };
  }

  async manifest(ref: ImageRef, reference = ref.reference): Promise<FetchedManifest> {
    const r = await this.ask(`manifest ${reference}`, () => this.cache.service.manifest({ ...this.target(ref), ref: reference, method: 'GET', accept: this.accept }));
    if (!r.body || (isDigest(reference) && r.digest !== reference)) throw new WarmError(`manifest ${reference}: the cache answered ${r.digest} without a body`);
    return { digest: r.digest, mediaType: r.mediaType, body: r.body };
  }

  async blob(ref: ImageRef, digest: string, onBytes: (n: number) => void): Promise<number> {
    const stored = await this.cache.stores.blobs.stat(digest);
    if (stored) { onBytes(stored.size); return stored.size; }
    const stream = await this.open(ref, digest);
    let n = 0;
    for await (const chunk of stream) { n += (chunk as Buffer).length; this.release.add((chunk as Buffer).length); onBytes((chunk as Buffer).length); }
    return n;
  }

  /** A blob's bytes: from the store, or from a fill that verifies and stores them as they arrive. */
  async open(ref: ImageRef, digest: string): Promise<Readable> {
    const r = await this.ask(`blob ${digest}`, () => this.cache.service.blob({ ...this.target(ref), digest, method: 'GET' }));
    if (!r.stream) throw new WarmError(`blob ${digest}: the cache answered without a body`);
    return r.stream;
  }

  /** Upstream failures read as `warm` reports them: what was asked, the OCI code and what each endpoint said. */
  private async ask<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (!(e instanceof OciError)) throw e;
      const detail = e.detail === undefined ? '' : ` (${JSON.stringify(e.detail)})`;
      throw new WarmError(`${what}: ${e.code}: ${e.message}${detail}`);
    }
  }
}

// normaliseAccept: the tag cache key and the Accept forwarded upstream keep only the known manifest media types,
// so a client cannot multiply cache entries or upstream requests with junk variants of one header.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MANIFEST_ACCEPT, MANIFEST_TYPES, accepts, acceptKey, normaliseAccept } from '../../../src/oci/mediatypes.js';

const CONTAINERD = `${MANIFEST_TYPES.dockerV2}, ${MANIFEST_TYPES.dockerList}, ${MANIFEST_TYPES.ociManifest}, ${MANIFEST_TYPES.ociIndex}, */*`;

describe('normaliseAccept', () => {
  it('keeps the known types, sorted, without parameters, case or duplicates', () => {
    expect(normaliseAccept(`${MANIFEST_TYPES.ociIndex};q=0.5, ${MANIFEST_TYPES.dockerV2.toUpperCase()}, ${MANIFEST_TYPES.ociIndex}`))
      .toBe([MANIFEST_TYPES.dockerV2, MANIFEST_TYPES.ociIndex].sort().join(', '));
    expect(normaliseAccept([MANIFEST_TYPES.ociIndex, MANIFEST_TYPES.dockerV2])).toBe(normaliseAccept(`${MANIFEST_TYPES.dockerV2}, ${MANIFEST_TYPES.ociIndex}`));
  });

  it('no Accept, or only unknown types, means the default set', () => {
    for (const a of [undefined, '', 'text/html', 'application/x-junk-1, application/x-junk-2;q=1', ',,,']) expect(normaliseAccept(a)).toBe(DEFAULT_MANIFEST_ACCEPT);
  });

  it('junk added to a real header does not change its key (property)', () => {
    fc.assert(fc.property(fc.array(fc.string({ maxLength: 40 }), { maxLength: 20 }), fc.array(fc.integer({ min: 0, max: 4 })), (junk, order) => {
      const known = CONTAINERD.split(', ');
      const shuffled = order.map((i) => known[i % known.length]!);
      const header = [...known, ...junk.filter((j) => !j.includes(',') && !known.some((k) => j.trim().toLowerCase().startsWith(k))), ...shuffled].join(', ');
      expect(acceptKey(header)).toBe(acceptKey(CONTAINERD));
    }));
  });

  it('any input gives a bounded, known-types-only answer (property)', () => {
    const known = new Set([...Object.values(MANIFEST_TYPES), '*/*', 'application/vnd.docker.distribution.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.oci.artifact.manifest.v1+json']);
    fc.assert(fc.property(fc.string({ maxLength: 20_000 }), (s) => {
      const out = normaliseAccept(s);
      for (const t of out.split(', ')) expect(known.has(t)).toBe(true);
    }));
  });

  it('accepts(): the media types a normalised Accept admits', () => {
    expect(accepts(CONTAINERD, 'application/vnd.whatever')).toBe(true);
    expect(accepts(MANIFEST_TYPES.ociManifest, MANIFEST_TYPES.dockerV2)).toBe(false);
    expect(accepts('', MANIFEST_TYPES.ociIndex)).toBe(true);
  });
});

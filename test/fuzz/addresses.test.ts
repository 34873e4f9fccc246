// Property tests of the private-address policy and of the manifest media type: every spelling of a private IPv4
// address is refused under "*" before DNS, public ones are not private in any IPv6 form, and a manifest's type
// depends on its bytes, not on what an upstream said, wherever the bytes say something.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MANIFEST_TYPES, manifestMediaType } from '../../src/oci/mediatypes.js';
import { ipLiteral, isPrivateAddress } from '../../src/upstream/addresses.js';
import { wildcardRefusal } from '../../src/upstream/wildcard.js';
import { fuzzRuns } from '../helpers/fuzz.js';

const PRIVATE_V4: [number, number][] = [
  [0x00000000, 8], [0x0a000000, 8], [0x64400000, 10], [0x7f000000, 8], [0xa9fe0000, 16], [0xac100000, 12], [0xc0a80000, 16], [0xe0000000, 4], [0xf0000000, 4],
];
const privateV4 = fc.tuple(fc.constantFrom(...PRIVATE_V4), fc.nat()).map(([[net, bits], r]) => (net | (r & (2 ** (32 - bits) - 1))) >>> 0);
const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const hex4 = (n: number) => `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;

/** Ways the URL parser (so undici) reads one IPv4 address. */
function spellings(n: number): string[] {
  const [a, b, c, d] = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return [
    dotted(n), String(n), `0x${n.toString(16)}`, `0${n.toString(8)}`, `${a}.${(b << 16) | (c << 8) | d}`, `0x${a.toString(16)}.${b}.${c}.0${d.toString(8)}`,
    `${dotted(n)}.`, `[::ffff:${hex4(n)}]`, `[::ffff:${dotted(n)}]`, `[0:0:0:0:0:ffff:${hex4(n)}]`, `[64:ff9b::${hex4(n)}]`,
  ];
}

describe('the private-address policy (properties)', () => {
  it('every spelling of a private IPv4 address is an IP literal, private, and refused under "*" before any lookup', () => {
    fc.assert(fc.property(privateV4, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), (n, port) => {
      for (const s of spellings(n)) {
        const host = port === undefined ? s : `${s}:${port}`;
        const literal = ipLiteral(host);
        expect(literal, host).toBeDefined();
        expect(isPrivateAddress(literal as string), host).toBe(true);
        expect(wildcardRefusal(host, false), host).toBeDefined();
        expect(wildcardRefusal(host, true)).toBeUndefined();
      }
    }), fuzzRuns());
  });

  it('a public IPv4 address is public dotted and IPv4-mapped, and still refused under "*" as a literal', () => {
    const publicV4 = fc.nat({ max: 2 ** 32 - 1 }).filter((n) => !isPrivateAddress(dotted(n)));
    fc.assert(fc.property(publicV4, (n) => {
      expect(isPrivateAddress(`::ffff:${hex4(n)}`)).toBe(false);
      expect(wildcardRefusal(dotted(n), false)).toBe('an IP address');
    }), fuzzRuns());
  });

  it('any string: the classifiers never throw, and what is not an address is private (refused)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => {
      const literal = ipLiteral(s);
      expect(typeof isPrivateAddress(s)).toBe('boolean');
      if (literal === undefined && !/^[0-9a-f:.[\]]+$/i.test(s)) expect(isPrivateAddress(s)).toBe(true);
      wildcardRefusal(s, false);
    }), fuzzRuns());
  });
});

describe('manifest media types (properties)', () => {
  const known = new Set([...Object.values(MANIFEST_TYPES), 'application/vnd.docker.distribution.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.oci.artifact.manifest.v1+json']);
  const contentType = fc.oneof(fc.constantFrom(...known, 'text/html', 'application/json', ''), fc.string({ maxLength: 40 }));

  it('any bytes and any upstream Content-Type: a known manifest type, never what the upstream made up', () => {
    fc.assert(fc.property(fc.oneof(fc.json(), fc.string({ maxLength: 200 })), contentType, (text, ct) => {
      expect(known.has(manifestMediaType(Buffer.from(text), ct))).toBe(true);
    }), fuzzRuns());
  });

  it('a manifest whose bytes declare or show what it is gets that type whatever two registries said', () => {
    const shaped = fc.oneof(
      fc.record({ schemaVersion: fc.constant(2), mediaType: fc.constantFrom(...Object.values(MANIFEST_TYPES)), extra: fc.anything() }),
      fc.record({ schemaVersion: fc.constant(2), config: fc.record({ digest: fc.string() }), layers: fc.array(fc.anything(), { maxLength: 2 }) }),
      fc.record({ schemaVersion: fc.constant(2), manifests: fc.array(fc.anything(), { maxLength: 2 }) }),
      fc.record({ schemaVersion: fc.constant(1), name: fc.string() }),
    );
    fc.assert(fc.property(shaped, contentType, contentType, (doc, a, b) => {
      const bytes = Buffer.from(JSON.stringify(doc));
      expect(manifestMediaType(bytes, a)).toBe(manifestMediaType(bytes, b));
    }), fuzzRuns());
  });
});

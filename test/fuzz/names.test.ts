// Property tests of what a client's request line becomes: the API path, the repository name, the reference and
// digest, and the route (?ns= or a path prefix). Whatever comes in, the answer is a route made of valid names, or an
// OCI error with a 4xx status; and the routing table is only ever asked about valid registry names.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRegistryName } from '../../src/config/registries.js';
import { OciError } from '../../src/oci/errors.js';
import { checkDigest, checkName, checkReference, isDigest, isName, isTag, parseApiPath } from '../../src/oci/names.js';
import { resolveRoute } from '../../src/server/routing.js';
import { fuzzRuns } from '../helpers/fuzz.js';

const component = fc.stringMatching(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/, { maxLength: 30 });
const validName = fc.array(component, { minLength: 1, maxLength: 5 }).map((c) => c.join('/')).filter((n) => n.length <= 255);
const hex = (n: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${n}}$`));
const validDigest = fc.oneof(hex(64).map((h) => `sha256:${h}`), hex(128).map((h) => `sha512:${h}`));
const validTag = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/);
/** Path-ish strings: mostly the characters routes are made of, some anything. */
const pathish = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'/v2abcm.:-_%@0123456789sha'.split('')), maxLength: 120 }).map((s) => `/v2/${s}`),
  fc.string({ maxLength: 200 }),
  fc.tuple(validName, fc.constantFrom('manifests', 'blobs', 'tags', 'referrers'), fc.oneof(validTag, validDigest, fc.string())).map(([n, r, ref]) => `/v2/${n}/${r}/${ref}`),
);

function onlyOciClientErrors(fn: () => unknown): void {
  try { fn(); } catch (err) {
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).status).toBeGreaterThanOrEqual(400);
    expect((err as OciError).status).toBeLessThan(500);
  }
}

describe('names, references and digests (properties)', () => {
  it('valid names, tags and digests pass; checks of anything else throw only 4xx OCI errors', () => {
    fc.assert(fc.property(validName, validTag, validDigest, fc.string({ maxLength: 300 }), (name, tag, digest, junk) => {
      expect(isName(name)).toBe(true);
      expect(checkReference(tag)).toEqual({ tag });
      expect(checkReference(digest)).toEqual({ digest });
      expect(checkDigest(digest)).toBe(digest);
      for (const check of [checkName, checkReference, checkDigest]) onlyOciClientErrors(() => check(junk));
      if (isDigest(junk)) expect(junk).toMatch(/^sha(256|512):[a-f0-9]+$/);
      if (isTag(junk)) expect(junk.length).toBeLessThanOrEqual(128);
    }), fuzzRuns());
  });

  it('parseApiPath never throws, and what it returns rebuilds the path', () => {
    fc.assert(fc.property(pathish, (path) => {
      const p = parseApiPath(path);
      if (!p) return;
      expect(`/v2/${p.name}/${p.resource}/${p.ref}`).toBe(path);
      expect(p.ref).not.toContain('/');
      if (p.resource === 'tags') expect(p.ref).toBe('list');
    }), fuzzRuns());
  });
});

describe('routing (properties)', () => {
  const configured = new Set(['docker.io', 'ghcr.io', '127.0.0.1:5000']);

  it('a route is made of valid names and asks the table only about valid registries; anything else is a 4xx', () => {
    const registryish = fc.oneof(fc.constantFrom(...configured, 'constructor', '__proto__', 'toString', '*', 'LOCALHOST:1', 'a..b', ''), fc.string({ maxLength: 40 }));
    fc.assert(fc.property(pathish, fc.option(registryish, { nil: undefined }), (path, ns) => {
      const parsed = parseApiPath(path);
      if (!parsed) return;
      const asked: string[] = [];
      const table = { defaultRegistry: 'docker.io', resolve: (r: string) => { asked.push(r); return configured.has(r) ? r : undefined; } };
      let route;
      try { route = resolveRoute(parsed.name, ns, table); } catch (err) {
        onlyOciClientErrors(() => { throw err; });
      }
      for (const r of asked) expect(isRegistryName(r) && r !== '*').toBe(true);
      if (!route) return;
      expect(configured.has(route.registry)).toBe(true);
      expect(route.mirror).toBe(route.registry);
      expect(isName(route.repo)).toBe(true);
    }), fuzzRuns());
  });

  it('a valid name under a configured ns always routes there', () => {
    fc.assert(fc.property(validName, fc.constantFrom(...configured), (name, ns) => {
      const route = resolveRoute(name, ns, { defaultRegistry: 'docker.io', resolve: (r) => (configured.has(r) ? r : undefined) });
      expect(route.registry).toBe(ns);
      expect(route.repo.endsWith(name)).toBe(true);
    }), fuzzRuns());
  });
});

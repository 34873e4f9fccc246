// Member names and archive JSON as any tool (or attacker) may write them: normalised names never climb out of the
// archive, and every parser either returns checked values or throws an ArchiveError naming the member — nothing else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArchiveError } from '../../../src/archive/archive-error.js';
import { blobPath, entryRole, normaliseEntryName, resolveLink } from '../../../src/archive/entry-names.js';
import { dockerManifestJson, dockerRepositories, ociIndexJson } from '../../../src/archive/export-layout.js';
import { parseDockerManifestJson, parseImageConfig, parseIndexJson, parseManifestDoc, parseRepositories } from '../../../src/archive/layout-json.js';

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
const digest = hex(64).map((h) => `sha256:${h}`);
const segment = fc.oneof(fc.constantFrom('.', '..', '', 'blobs', 'sha256', 'layer.tar', 'manifest.json'), fc.string({ maxLength: 12 }));
const memberName = fc.array(segment, { maxLength: 8 }).chain((parts) => fc.constantFrom('', './', '/').map((p) => p + parts.join('/')));

describe('member names', () => {
  it('normalise to relative paths without "." or ".." components, idempotently', () => {
    fc.assert(fc.property(memberName, (raw) => {
      const n = normaliseEntryName(raw);
      if (n === undefined) return;
      const parts = n.split('/');
      expect(n.startsWith('/')).toBe(false);
      expect(parts.every((p) => p !== '' && p !== '.' && p !== '..')).toBe(true);
      expect(normaliseEntryName(n)).toBe(n);
    }), { numRuns: 2000 });
  });

  it('refuse names that climb out of the archive, whatever surrounds the ".."', () => {
    fc.assert(fc.property(memberName, memberName, (before, after) => {
      expect(normaliseEntryName(`${before}/../${after}`)).toBeUndefined();
    }));
  });

  it('blobs/<algorithm>/<hex> and <hex>.json/.tar are content named by digest; nothing else is', () => {
    fc.assert(fc.property(digest, (d) => {
      expect(entryRole(blobPath(d))).toEqual({ kind: 'blob', digest: d });
      expect(entryRole(`${d.slice(7)}.json`)).toEqual({ kind: 'blob', digest: d });
      expect(entryRole(`${d.slice(7)}/layer.tar`)).toEqual({ kind: 'other' });
      expect(entryRole(`blobs/sha256/${d.slice(8)}`)).toEqual({ kind: 'other' });
    }));
    expect(entryRole('index.json')).toEqual({ kind: 'metadata', file: 'index.json' });
    expect(entryRole('x/manifest.json')).toEqual({ kind: 'other' });
  });

  it('symbolic links resolve inside the archive or not at all', () => {
    expect(resolveLink('abc/layer.tar', '../def/layer.tar')).toBe('def/layer.tar');
    expect(resolveLink('abc/layer.tar', '../../etc/passwd')).toBeUndefined();
    fc.assert(fc.property(memberName, memberName, (from, target) => {
      const n = normaliseEntryName(from);
      if (n === undefined) return;
      const r = resolveLink(n, target);
      if (r !== undefined) expect(normaliseEntryName(r)).toBe(r);
    }));
  });
});

/** Every parser, run on anything: a value or an ArchiveError naming the member, never another exception. */
function onlyArchiveErrors(parse: (data: Buffer) => unknown, member: string): (data: Buffer) => void {
  return (data) => {
    try { parse(data); } catch (e) {
      expect(e).toBeInstanceOf(ArchiveError);
      expect((e as ArchiveError).message.startsWith(`${member}: `)).toBe(true);
    }
  };
}

const anyJson = fc.oneof(fc.json().map((j) => Buffer.from(j)), fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)));
// Structured inputs that are almost right: the shapes these files have, with fields of arbitrary types.
const anything = fc.anything({ maxDepth: 3 });
const descriptorish = fc.record({ mediaType: fc.oneof(fc.string(), anything), digest: fc.oneof(digest, anything), size: fc.oneof(fc.nat(), anything), annotations: fc.option(fc.dictionary(fc.string(), fc.oneof(fc.string(), anything))) }, { requiredKeys: [] });
const nearIndex = fc.record({ schemaVersion: fc.oneof(fc.constant(2), anything), manifests: fc.oneof(fc.array(descriptorish), anything) }).map((o) => Buffer.from(JSON.stringify(o)));
const nearImage = fc.record({ schemaVersion: fc.constant(2), config: descriptorish, layers: fc.array(descriptorish) }, { requiredKeys: ['schemaVersion'] }).map((o) => Buffer.from(JSON.stringify(o)));
const nearDocker = fc.array(fc.record({ Config: fc.oneof(fc.string(), anything), RepoTags: fc.oneof(fc.array(fc.string()), fc.constant(null), anything), Layers: fc.oneof(fc.array(fc.string()), anything) }, { requiredKeys: [] })).map((o) => Buffer.from(JSON.stringify(o)));
const nearRepos = fc.dictionary(fc.string(), fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.string(), anything)), anything)).map((o) => Buffer.from(JSON.stringify(o)));
const nearConfig = fc.record({ os: anything, architecture: anything, rootfs: fc.oneof(fc.record({ diff_ids: fc.oneof(fc.array(fc.oneof(digest, anything)), anything) }), anything) }, { requiredKeys: [] }).map((o) => Buffer.from(JSON.stringify(o)));

describe('archive JSON parsers', () => {
  it('index.json', () => fc.assert(fc.property(fc.oneof(anyJson, nearIndex), onlyArchiveErrors((d) => parseIndexJson(d), 'index.json')), { numRuns: 500 }));
  it('manifests', () => fc.assert(fc.property(fc.oneof(anyJson, nearIndex, nearImage), onlyArchiveErrors((d) => parseManifestDoc(d, 'blobs/sha256/x'), 'blobs/sha256/x')), { numRuns: 500 }));
  it('manifest.json', () => fc.assert(fc.property(fc.oneof(anyJson, nearDocker), onlyArchiveErrors((d) => parseDockerManifestJson(d), 'manifest.json')), { numRuns: 500 }));
  it('repositories', () => fc.assert(fc.property(fc.oneof(anyJson, nearRepos), onlyArchiveErrors((d) => parseRepositories(d), 'repositories')), { numRuns: 500 }));
  it('image configs', () => fc.assert(fc.property(fc.oneof(anyJson, nearConfig), onlyArchiveErrors((d) => parseImageConfig(d, 'c.json'), 'c.json')), { numRuns: 500 }));

  it('read back what export writes: index.json, manifest.json and repositories', () => {
    const image = fc.record({ name: fc.constantFrom('docker.io/library/a:1', 'ghcr.io/o/app:2.0', '127.0.0.1:5000/x/y:z'), digest, size: fc.nat(), mediaType: fc.constantFrom('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json') });
    fc.assert(fc.property(fc.array(image, { maxLength: 5 }), (images) => {
      const parsed = parseIndexJson(ociIndexJson(images));
      expect(parsed.map((d) => [d.digest, d.size, d.mediaType, d.annotations?.['io.containerd.image.name']])).toEqual(images.map((i) => [i.digest, i.size, i.mediaType, i.name]));
    }));
    const docker = fc.record({ name: fc.constantFrom('docker.io/library/a:1', 'ghcr.io/o/app:2.0'), config: digest, layers: fc.array(digest, { minLength: 1, maxLength: 4 }) });
    fc.assert(fc.property(fc.array(docker, { maxLength: 4 }), (images) => {
      expect(parseDockerManifestJson(dockerManifestJson(images))).toEqual(images.map((i) => ({ config: blobPath(i.config), repoTags: [i.name], layers: i.layers.map(blobPath) })));
      const repos = parseRepositories(dockerRepositories(images));
      for (const i of images) expect([...repos.keys()]).toContain(i.name);
    }));
  });

  it('say which field is wrong and what was expected', () => {
    expect(() => parseIndexJson(Buffer.from('{"schemaVersion":2,"manifests":[{"digest":"sha256:abc","size":1}]}'))).toThrow('index.json: manifests[0].digest: expected a digest like sha256:<64 hex>, got "sha256:abc"');
    expect(() => parseDockerManifestJson(Buffer.from('[{"Config":"c.json","Layers":"x"}]'))).toThrow('manifest.json: [0].Layers: expected an array, got "x"');
    expect(() => parseManifestDoc(Buffer.from('{"schemaVersion":1}'), 'm')).toThrow('m: schemaVersion: expected 2 (schema 1 manifests cannot be imported), got 1');
  });
});

// Name, tag and digest grammar (distribution-spec), checked before anything goes upstream or near the disk.
import { describe, expect, it } from 'vitest';
import { OciError } from '../../../src/oci/errors.js';
import { checkDigest, checkName, checkReference, isDigest, isName, isTag, parseApiPath } from '../../../src/oci/names.js';

const sha256 = `sha256:${'a'.repeat(64)}`;
const sha512 = `sha512:${'b'.repeat(128)}`;

function codeOf(fn: () => unknown): string | undefined {
  try { fn(); } catch (err) { return err instanceof OciError ? `${err.code} ${err.status}` : String(err); }
  return undefined;
}

describe('repository names', () => {
  it.each(['alpine', 'library/alpine', 'a/b/c/d', 'my-org/my_app', 'a__b', 'a.b/c-d', 'a---b', '0/1', 'x'.repeat(255)])('%s is valid', (n) => {
    expect(isName(n)).toBe(true);
  });
  it.each(['', 'Alpine', 'library/', '/alpine', 'a//b', 'a_', '-a', 'a___b', 'a..b', 'a b', '../etc', 'a/../b', 'x'.repeat(256), 'a:b'])('%j is invalid', (n) => {
    expect(isName(n)).toBe(false);
  });
  it('checkName throws NAME_INVALID (400)', () => {
    expect(codeOf(() => checkName('UPPER/case'))).toBe('NAME_INVALID 400');
    expect(checkName('library/alpine')).toBe('library/alpine');
  });
});

describe('tags', () => {
  it.each(['latest', '1.0', 'v1.2.3-rc.1', '_x', 'A_b-c.d', 'x'.repeat(128)])('%s is valid', (t) => expect(isTag(t)).toBe(true));
  it.each(['', '.hidden', '-x', 'x'.repeat(129), 'a/b', 'a:b', 'a+b'])('%j is invalid', (t) => expect(isTag(t)).toBe(false));
});

describe('digests', () => {
  it('sha256 = 64 lowercase hex, sha512 = 128', () => {
    expect(isDigest(sha256)).toBe(true);
    expect(isDigest(sha512)).toBe(true);
    expect(isDigest(`sha256:${'A'.repeat(64)}`)).toBe(false);
    expect(isDigest(`sha256:${'a'.repeat(63)}`)).toBe(false);
    expect(isDigest(`sha256:${'a'.repeat(65)}`)).toBe(false);
    expect(isDigest(`sha512:${'b'.repeat(64)}`)).toBe(false);
    expect(isDigest(`md5:${'a'.repeat(32)}`)).toBe(false);
    expect(isDigest('sha256:')).toBe(false);
  });
  it('checkDigest throws DIGEST_INVALID (400)', () => {
    expect(codeOf(() => checkDigest('sha256:xyz'))).toBe('DIGEST_INVALID 400');
  });
  it('a manifest reference is a tag or a digest; a bad digest is DIGEST_INVALID, a bad tag TAG_INVALID', () => {
    expect(checkReference(sha256)).toEqual({ digest: sha256 });
    expect(checkReference('1.0')).toEqual({ tag: '1.0' });
    expect(codeOf(() => checkReference('sha256:abc'))).toBe('DIGEST_INVALID 400');
    expect(codeOf(() => checkReference('.bad'))).toBe('TAG_INVALID 400');
  });
});

describe('parseApiPath', () => {
  it('anchors the resource at the end: names contain slashes', () => {
    expect(parseApiPath('/v2/library/alpine/manifests/latest')).toEqual({ name: 'library/alpine', resource: 'manifests', ref: 'latest' });
    expect(parseApiPath(`/v2/a/b/c/blobs/${sha256}`)).toEqual({ name: 'a/b/c', resource: 'blobs', ref: sha256 });
    expect(parseApiPath('/v2/x/tags/list')).toEqual({ name: 'x', resource: 'tags', ref: 'list' });
    expect(parseApiPath(`/v2/x/referrers/${sha256}`)).toEqual({ name: 'x', resource: 'referrers', ref: sha256 });
  });
  it('a repository may itself be called "manifests" or "blobs"', () => {
    expect(parseApiPath('/v2/manifests/manifests/1.0')).toEqual({ name: 'manifests', resource: 'manifests', ref: '1.0' });
    expect(parseApiPath('/v2/org/blobs/manifests/1.0')).toEqual({ name: 'org/blobs', resource: 'manifests', ref: '1.0' });
  });
  it('keeps a registry prefix in the name (routing decides what it means)', () => {
    expect(parseApiPath('/v2/127.0.0.1:5001/library/x/manifests/1.0')?.name).toBe('127.0.0.1:5001/library/x');
  });
  it.each(['/v2/', '/v2/x', '/v2/x/manifests', '/v2/x/manifests/', '/v2/x/tags/other', '/v2/x/blobs/uploads/', '/v3/x/manifests/1', '/v2/x/manifests/a/b'])('%s is not an API path', (p) => {
    expect(parseApiPath(p)).toBeUndefined();
  });
});

// Range parsing and resolution for blobs: 206 with inclusive bounds, unsatisfiable → 416, oddities ignored.
import { describe, expect, it } from 'vitest';
import { parseRange, resolveRange } from '../../../src/oci/service.js';
import { OciError, ERROR_TABLE } from '../../../src/oci/errors.js';

describe('parseRange', () => {
  it('parses single byte ranges', () => {
    expect(parseRange('bytes=0-99')).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=100-')).toEqual({ start: 100 });
    expect(parseRange('bytes=-500')).toEqual({ start: 0, suffix: 500 });
    expect(parseRange(' bytes=5-5 ')).toEqual({ start: 5, end: 5 });
  });
  it.each([undefined, '', 'bytes=-', 'bytes=9-3', 'items=0-1', 'bytes=0-1,5-6', 'bytes=a-b', 'bytes 0-1'])('ignores %j', (h) => {
    expect(parseRange(h)).toBeUndefined();
  });
});

describe('resolveRange', () => {
  it('clamps the end to the size', () => {
    expect(resolveRange({ start: 0, end: 99 }, 1000)).toEqual({ start: 0, end: 99 });
    expect(resolveRange({ start: 900, end: 5000 }, 1000)).toEqual({ start: 900, end: 999 });
    expect(resolveRange({ start: 10 }, 1000)).toEqual({ start: 10, end: 999 });
    expect(resolveRange({ start: 999 }, 1000)).toEqual({ start: 999, end: 999 });
  });
  it('suffix ranges count from the end', () => {
    expect(resolveRange({ start: 0, suffix: 100 }, 1000)).toEqual({ start: 900, end: 999 });
    expect(resolveRange({ start: 0, suffix: 5000 }, 1000)).toEqual({ start: 0, end: 999 });
  });
  it('unsatisfiable ranges are undefined (→ 416)', () => {
    expect(resolveRange({ start: 1000 }, 1000)).toBeUndefined();
    expect(resolveRange({ start: 0, suffix: 0 }, 1000)).toBeUndefined();
    expect(resolveRange({ start: 0 }, 0)).toBeUndefined();
  });
});

describe('OCI error table', () => {
  it('maps codes to the statuses the spec gives them', () => {
    const status = Object.fromEntries(Object.entries(ERROR_TABLE).map(([k, v]) => [k, v[0]]));
    expect(status).toMatchObject({
      BLOB_UNKNOWN: 404, MANIFEST_UNKNOWN: 404, NAME_UNKNOWN: 404, NAME_INVALID: 400, DIGEST_INVALID: 400, MANIFEST_INVALID: 400,
      UNAUTHORIZED: 401, DENIED: 403, UNSUPPORTED: 405, TOOMANYREQUESTS: 429, UNAVAILABLE: 503, RANGE_INVALID: 416,
    });
  });
  it('serialises to {"errors":[{code,message,detail}]}', () => {
    expect(new OciError('BLOB_UNKNOWN', { digest: 'x' }).toJSON()).toEqual({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest: 'x' } }] });
    expect(new OciError('UNAVAILABLE', undefined, { status: 504, message: 'm' })).toMatchObject({ status: 504, message: 'm' });
  });
});

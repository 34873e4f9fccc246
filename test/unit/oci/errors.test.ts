// The OCI error table: code → HTTP status → message, and the JSON clients get.
import { describe, expect, it } from 'vitest';
import { OciError, ERROR_TABLE } from '../../../src/oci/errors.js';

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

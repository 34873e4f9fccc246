// The OCI distribution error table (code → HTTP status → message), and one error class that carries a code.
// Clients always get {"errors":[{"code","message","detail"}]}.

export const ERROR_TABLE = {
  BLOB_UNKNOWN: [404, 'blob unknown to registry'],
  MANIFEST_UNKNOWN: [404, 'manifest unknown'],
  NAME_UNKNOWN: [404, 'repository name not known to registry'],
  NAME_INVALID: [400, 'invalid repository name'],
  TAG_INVALID: [400, 'manifest tag did not match URI'],
  DIGEST_INVALID: [400, 'provided digest did not match uploaded content'],
  MANIFEST_INVALID: [400, 'manifest invalid'],
  SIZE_INVALID: [400, 'provided length did not match content length'],
  RANGE_INVALID: [416, 'requested range not satisfiable'],
  UNAUTHORIZED: [401, 'authentication required'],
  DENIED: [403, 'requested access to the resource is denied'],
  NOT_FOUND: [404, 'not found'],
  UNSUPPORTED: [405, 'the operation is unsupported'],
  TOOMANYREQUESTS: [429, 'too many requests'],
  UNAVAILABLE: [503, 'service unavailable'],
  UNKNOWN: [500, 'unknown error'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class OciError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail?: unknown,
    opts: { status?: number; message?: string; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(opts.message ?? ERROR_TABLE[code][1], { cause: opts.cause });
    this.name = 'OciError';
    this.status = opts.status ?? ERROR_TABLE[code][0];
    this.headers = opts.headers ?? {};
  }
  readonly headers: Record<string, string>;

  toJSON(): { errors: { code: string; message: string; detail?: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, ...(this.detail === undefined ? {} : { detail: this.detail }) }] };
  }
}

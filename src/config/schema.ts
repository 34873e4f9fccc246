// The configuration contract: types and defaults in one place. Key names match config/ocimirror.yaml
// and, under `mirrors`/`configs`, K3s registries.yaml exactly (snake_case there, as K3s spells it).

/** `mirrors.<registry>` of K3s registries.yaml. */
export interface MirrorEntry {
  readonly endpoint: readonly string[];
  /** RE2 pattern → replacement ($1 style), applied to the repository path. */
  readonly rewrite: Readonly<Record<string, string>>;
}

/** `configs.<endpoint host[:port]>.auth` of K3s registries.yaml. */
export interface AuthEntry {
  readonly username?: string;
  readonly password?: string;
  /** base64(username:password) */
  readonly auth?: string;
  readonly identity_token?: string;
}

/** `configs.<endpoint host[:port]>.tls` of K3s registries.yaml. */
export interface TlsEntry {
  readonly ca_file?: string;
  readonly cert_file?: string;
  readonly key_file?: string;
  readonly insecure_skip_verify?: boolean;
}

export interface RegistryConfigEntry {
  readonly auth?: AuthEntry;
  readonly tls?: TlsEntry;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface HealthConfig {
  /** Consecutive transport failures / 5xx that open an endpoint's circuit. */
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  readonly maxCooldownMs: number;
  readonly probeIntervalMs: number;
}

/** `cache.store`: the local filesystem (cache.dir), or an S3 bucket that replicas share. */
export type StoreConfig = { readonly type: 'fs' } | S3StoreConfig;

export interface S3StoreConfig {
  readonly type: 's3';
  /** Absent for AWS itself. */
  readonly endpoint?: string;
  readonly region: string;
  readonly bucket: string;
  /** "" or a key prefix. */
  readonly prefix: string;
  readonly forcePathStyle: boolean;
  /** Answer warm blob GETs with a 307 to a short-lived presigned URL: bytes flow from the store, not through Node. */
  readonly redirect: boolean;
  /** Both or neither; neither means the SDK's default credential chain. */
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
}

/** `cluster`: replicas coordinating through Redis. */
export interface ClusterConfig {
  /** redis:// or rediss:// URL (may hold a password: log it only through redactUrl). */
  readonly redis: string;
  /** How the other replicas reach this one. */
  readonly advertiseUrl: string;
  /** OCIMIRROR_CLUSTER_SECRET: signs requests between replicas (never logged). */
  readonly secret: string;
}

/** Server-side connection limits (security: no client can hold connections or sockets open for free). */
export interface ServerLimits {
  /** A request's headers must have arrived within this long (slow-header clients are dropped). */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  readonly keepAliveTimeoutMs: number;
  /** A connection with no traffic either way for this long (a client that stopped reading) is closed. */
  readonly idleTimeoutMs: number;
  /** Connections beyond this many are refused at accept. */
  readonly maxConnections: number;
}

export interface Config {
  /** Path of the file this was loaded from (for messages). */
  readonly source: string;
  readonly server: {
    readonly listen: ListenAddress;
    readonly url: string;
    readonly tls?: { readonly cert_file: string; readonly key_file: string };
    /** Clients must authenticate (Basic) against these htpasswd (bcrypt) users. */
    readonly auth?: { readonly htpasswd: string; readonly realm: string };
    readonly limits: ServerLimits;
    /** On SIGTERM, how long in-flight responses may run before fills are aborted and connections closed. */
    readonly shutdownGraceMs: number;
  };
  readonly cache: {
    readonly dir: string;
    readonly maxSize: number;
    /** Upper bound on how many blobs, manifests and tag mappings are kept (the index lives in memory). */
    readonly maxEntries: number;
    readonly tagTtlMs: number;
    readonly fillTimeoutMs: number;
    /** Blob fills running at once; past it a GET of another uncached blob streams through uncached. */
    readonly maxFills: number;
    /** Fills going on with no client attached; the next one whose last client leaves is cancelled. */
    readonly maxDetachedFills: number;
    /** Bytes of small manifests and blobs also kept in memory (filesystem store); 0 turns it off. */
    readonly memorySize: number;
    readonly store: StoreConfig;
    /** Policy defaults (a `policies` rule overrides each for the repositories it matches). */
    readonly immutableTags?: string;
    readonly staleIfErrorMs: number;
    readonly staleIfNotFoundMs: number;
    readonly negativeTtlMs: number;
  };
  readonly upstream: {
    readonly connectTimeoutMs: number;
    readonly responseTimeoutMs: number;
    /** No body bytes for this long aborts a transfer from an endpoint. */
    readonly readTimeoutMs: number;
    readonly failureStatus: 503 | 504 | 404;
    readonly appendDefaultEndpoint: boolean;
    /** Under "*", let clients name registries on private addresses (loopback, RFC 1918, ...); redirects too. */
    readonly allowPrivateNetworks: boolean;
    readonly health: HealthConfig;
    /** Below this many remaining requests (or percent of the limit) cached tags are not revalidated. */
    readonly rateLimitThreshold: RateLimitThreshold;
  };
  readonly defaultRegistry: string;
  readonly log: { readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  /** Path of the registries.yaml the mirrors/configs came from, if `registries:` was used. */
  readonly registries?: string;
  readonly mirrors: Readonly<Record<string, MirrorEntry>>;
  readonly configs: Readonly<Record<string, RegistryConfigEntry>>;
  /** Absent: a single replica. */
  readonly cluster?: ClusterConfig;
  readonly policies: readonly PolicyRule[];
  /** Non-empty: only repositories matching one of these are served. */
  readonly allowRepositories: readonly RepositoryPattern[];
}

// --- policies (issue 13) ---

export type RateLimitThreshold = { readonly percent: number } | { readonly count: number };

/** A registry glob and a repository glob ("*" matches any run of characters, "/" included). */
export interface RepositoryPattern {
  readonly registry: string;
  readonly repository: string;
  /** "file:line:col" of the entry, so a refusal can name the rule that decided it. */
  readonly at: string;
}

/** One `policies` entry: the first whose match fits decides; unset fields fall back to `cache.*`. */
export interface PolicyRule {
  readonly match: RepositoryPattern;
  readonly tagTtlMs?: number;
  /** RE2; tags matching it are never revalidated once cached. */
  readonly immutableTags?: string;
  readonly staleIfErrorMs?: number;
  readonly staleIfNotFoundMs?: number;
  readonly negativeTtlMs?: number;
  readonly deny?: boolean;
}

export const DEFAULTS = {
  listen: '0.0.0.0:5000',
  url: 'http://127.0.0.1:5000',
  cacheDir: './data',
  maxSize: '20GiB',
  maxEntries: 200_000,
  tagTtl: '60s',
  fillTimeout: '30m',
  maxFills: 16,
  maxDetachedFills: 4,
  memorySize: '32MiB',
  staleIfError: '7d',
  staleIfNotFound: '0',
  negativeTtl: '0',
  rateLimitThreshold: '10%',
  connectTimeout: '5s',
  responseTimeout: '30s',
  readTimeout: '30s',
  failureStatus: 503,
  failureThreshold: 1,
  cooldown: '10s',
  maxCooldown: '5m',
  probeInterval: '5s',
  defaultRegistry: 'docker.io',
  headersTimeout: '30s',
  keepAliveTimeout: '30s',
  idleTimeout: '60s',
  maxConnections: 4096,
  logLevel: 'info',
  // Leaves room inside the 10 s that `podman stop` / `docker stop` wait before SIGKILL.
  shutdownGrace: '5s',
} as const;

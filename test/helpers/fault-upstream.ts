import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { pipeline, Readable, Transform } from 'node:stream';
import type { Blob, BuiltImage, BuiltIndex } from './images.js';
import { makeTmpDir, removeTmpDir } from './tmp.js';
import { generateSelfSignedCert } from './token-server.js';

export type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'stall-headers' }
  | { kind: 'stall-body'; afterBytes: number }
  | { kind: 'reset-body'; afterBytes: number }
  | { kind: 'corrupt'; atByte?: number }
  | { kind: 'throttle'; bytesPerSecond: number }
  | { kind: 'ignore-range' }
  /** Answers without Content-Length (chunked; a HEAD says nothing about the size). */
  | { kind: 'no-length' }
  /** Answers normally once `until` resolves (a slow upstream, released by the test instead of a timer). */
  | { kind: 'hold'; until: Promise<unknown> };
export interface RecordedRequest { method: string; path: string; headers: Record<string, string | string[] | undefined> }
export interface FaultUpstream {
  readonly url: string; readonly host: string; readonly port: number;
  /** PEM of the self-signed certificate when started with tls: true (trust it, or skip verification). */
  readonly ca?: string; readonly caFile?: string;
  add(repo: string, tag: string, image: BuiltImage | BuiltIndex): void;
  fault(match: { method?: string; path: RegExp }, fault: Fault, times?: number): void;
  clearFaults(): void;
  /**
   * Docker Hub's rate-limit headers on every manifest response (`ratelimit-limit: L;w=W`, `ratelimit-remaining`,
   * `docker-ratelimit-source`), counting down on each manifest GET (HEAD is free, as on Docker Hub); a GET with none
   * left gets 429 TOOMANYREQUESTS (with Retry-After when given). `undefined` turns it off.
   */
  rateLimit(opts: RateLimitMode | undefined): void;
  /** Requests left in the current rate-limit window. */
  readonly remaining: number | undefined;
  /** TCP connections accepted so far (0 proves nothing was ever sent here). */
  connections(): number;
  requests(): RecordedRequest[];
  count(method: string, path: RegExp): number;
  /** Connections open right now (a client that closed its pool has none). */
  openConnections(): number;
  close(): Promise<void>;
}

export interface RateLimitMode { limit: number; remaining?: number; windowSeconds: number; retryAfterSeconds?: number; source?: string }
interface Repo { tags: Map<string, string>; manifests: Map<string, { data: Buffer; mediaType: string }>; blobs: Map<string, Blob> }
interface ActiveFault { method?: string; path: RegExp; fault: Fault; remaining: number }
interface Body { size: number; open(start: number, end: number): Readable }

// Injected statuses carry the OCI error code a real registry would send with them.
const INJECTED_CODES: Record<number, string> = { 401: 'UNAUTHORIZED', 403: 'DENIED', 405: 'UNSUPPORTED', 429: 'TOOMANYREQUESTS', 503: 'UNAVAILABLE' };
function injectedCode(status: number, path: string): string {
  if (status === 404) return path.includes('/blobs/') ? 'BLOB_UNKNOWN' : path.includes('/manifests/') ? 'MANIFEST_UNKNOWN' : 'NAME_UNKNOWN';
  return INJECTED_CODES[status] ?? 'UNKNOWN';
}
const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };

function bufferBody(data: Buffer): Body {
  return { size: data.length, open: (start, end) => Readable.from([data.subarray(start, end + 1)]) };
}
function blobBody(blob: Blob): Body {
  if (blob.data) return bufferBody(blob.data);
  const file = blob.file!;
  return { size: blob.size, open: (start, end) => fs.createReadStream(file, { start, end }) };
}

/** Flips one byte at `atByte` of the stream, keeping its length (a digest mismatch the client must catch). */
function corrupter(atByte: number): Transform {
  let offset = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (atByte >= offset && atByte < offset + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[atByte - offset] = chunk[atByte - offset]! ^ 0xff;
      }
      offset += chunk.length;
      done(null, chunk);
    },
  });
}

/** Holds each chunk until the bytes so far are due at `bytesPerSecond`: a slow uplink. */
function throttler(bytesPerSecond: number): Transform {
  let started = 0;
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      started ||= Date.now();
      sent += chunk.length;
      setTimeout(() => done(null, chunk), Math.max(0, started + (sent / bytesPerSecond) * 1000 - Date.now()));
    },
  });
}

/** Sends `afterBytes` of the body, then stalls (keeps the socket open, silent) or resets (destroys the socket). */
function truncate(source: Readable, res: http.ServerResponse, afterBytes: number, then: 'stall' | 'reset'): void {
  let sent = 0;
  const stop = () => {
    source.destroy();
    if (then === 'reset') res.socket?.destroy();
  };
  res.flushHeaders();
  if (afterBytes === 0) return stop();
  source.on('data', (chunk: Buffer) => {
    const room = afterBytes - sent;
    const part = chunk.length >= room ? chunk.subarray(0, room) : chunk;
    sent += part.length;
    if (sent >= afterBytes) { source.pause(); res.write(part, stop); return; }
    if (!res.write(part)) { source.pause(); res.once('drain', () => source.resume()); }
  });
}

/** 0-based inclusive [start, end] of a single `bytes=` range; null when absent, 'invalid' when unsatisfiable. */
function parseRange(header: string | undefined, size: number): [number, number] | null | 'invalid' {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!match) return null;
  const [, from = '', to = ''] = match;
  const start = from === '' ? Math.max(0, size - Number(to)) : Number(from);
  const end = from === '' || to === '' ? size - 1 : Math.min(Number(to), size - 1);
  return start > end || start >= size ? 'invalid' : [start, end];
}

/** `host`: another loopback address to listen on (127.0.0.2 plays a "public" host in the private-address tests). */
export async function startFaultUpstream(opts: { tls?: boolean; host?: string } = {}): Promise<FaultUpstream> {
  const repos = new Map<string, Repo>();
  const seen: RecordedRequest[] = [];
  let faults: ActiveFault[] = [];
  let limits: (RateLimitMode & { remaining: number }) | undefined;
  const repo = (name: string): Repo => {
    let r = repos.get(name);
    if (!r) repos.set(name, (r = { tags: new Map(), manifests: new Map(), blobs: new Map() }));
    return r;
  };

  function takeFault(method: string, path: string): Fault | undefined {
    const hit = faults.find((f) => f.remaining > 0 && (!f.method || f.method.toUpperCase() === method) && f.path.test(path));
    if (hit) hit.remaining--;
    return hit?.fault;
  }

  /** Sets the rate-limit headers; true when the request was refused with 429 (nothing left in the window). */
  function countDown(req: http.IncomingMessage, res: http.ServerResponse, method: string, l: RateLimitMode & { remaining: number }): boolean {
    const exhausted = method === 'GET' && l.remaining === 0;
    if (method === 'GET' && !exhausted) l.remaining--;
    res.setHeader('ratelimit-limit', `${l.limit};w=${l.windowSeconds}`);
    res.setHeader('ratelimit-remaining', `${l.remaining};w=${l.windowSeconds}`);
    res.setHeader('docker-ratelimit-source', l.source ?? '127.0.0.1');
    if (!exhausted) return false;
    sendError(req, res, 429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit.', l.retryAfterSeconds !== undefined ? { 'retry-after': String(l.retryAfterSeconds) } : {});
    return true;
  }

  function sendError(req: http.IncomingMessage, res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    const body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
    res.writeHead(status, { ...API_VERSION, 'content-type': 'application/json', 'content-length': body.length, ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function send(req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string>, body: Body, fault: Fault | undefined, ranged: boolean): void {
    let range = ranged && fault?.kind !== 'ignore-range' ? parseRange(req.headers.range, body.size) : null;
    if (range === 'invalid') return sendError(req, res, 416, 'RANGE_INVALID', 'range not satisfiable', { 'content-range': `bytes */${body.size}` });
    const [start, end] = range ?? [0, body.size - 1];
    const status = range ? 206 : 200;
    res.writeHead(status, {
      ...API_VERSION, ...headers, ...(fault?.kind === 'no-length' ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(end - start + 1) }),
      ...(ranged ? { 'accept-ranges': 'bytes' } : {}), ...(range ? { 'content-range': `bytes ${start}-${end}/${body.size}` } : {}),
    });
    if (req.method === 'HEAD' || end < start) { res.end(); return; }
    const source = body.open(start, end);
    if (fault?.kind === 'stall-body' || fault?.kind === 'reset-body') {
      return truncate(source, res, fault.afterBytes, fault.kind === 'stall-body' ? 'stall' : 'reset');
    }
    // pipeline (not pipe) so a client that hangs up also closes the file stream.
    const done = () => undefined;
    if (fault?.kind === 'corrupt') pipeline(source, corrupter(fault.atByte ?? Math.floor((end - start) / 2)), res, done);
    else if (fault?.kind === 'throttle') pipeline(source, throttler(fault.bytesPerSecond), res, done);
    else pipeline(source, res, done);
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    seen.push({ method, path: rawPath, headers: { ...req.headers } });
    if (limits && rawPath.includes('/manifests/') && countDown(req, res, method, limits)) return;
    const fault = takeFault(method, rawPath);
    if (fault?.kind === 'hold') { void fault.until.then(() => respond(req, res, method, rawPath, undefined)); return; }
    respond(req, res, method, rawPath, fault);
  }

  function respond(req: http.IncomingMessage, res: http.ServerResponse, method: string, rawPath: string, fault: Fault | undefined): void {
    if (fault?.kind === 'status') return sendError(req, res, fault.status, injectedCode(fault.status, rawPath), `injected ${fault.status}`, fault.headers);
    if (fault?.kind === 'stall-headers') return; // never answer; the socket is destroyed on close()
    if (method !== 'GET' && method !== 'HEAD') return sendError(req, res, 405, 'UNSUPPORTED', 'this upstream is read-only');
    const { pathname, searchParams } = new URL(rawPath, 'http://upstream.invalid');
    if (pathname === '/v2/' || pathname === '/v2') {
      return send(req, res, { 'content-type': 'application/json' }, bufferBody(Buffer.from('{}')), fault, false);
    }
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(pathname) ?? /^\/v2\/(.+)\/(tags)\/list$/.exec(pathname);
    const [, name = '', kind = '', reference = ''] = match ?? [];
    const r = repos.get(name);
    if (!match) return sendError(req, res, 404, 'NOT_FOUND', `no route for ${pathname}`);
    if (kind === 'tags') {
      if (!r) return sendError(req, res, 404, 'NAME_UNKNOWN', `repository ${name} not known`);
      return sendTags(req, res, name, [...r.tags.keys()].sort(), searchParams, fault);
    }
    if (kind === 'manifests') {
      const digest = reference.includes(':') ? reference : r?.tags.get(reference);
      const manifest = digest ? r?.manifests.get(digest) : undefined;
      if (!digest || !manifest) return sendError(req, res, 404, 'MANIFEST_UNKNOWN', `manifest ${reference} not known in ${name}`);
      return send(req, res, { 'content-type': manifest.mediaType, 'docker-content-digest': digest, etag: `"${digest}"` }, bufferBody(manifest.data), fault, false);
    }
    const blob = r?.blobs.get(reference);
    if (!blob) return sendError(req, res, 404, 'BLOB_UNKNOWN', `blob ${reference} not known in ${name}`);
    send(req, res, { 'content-type': 'application/octet-stream', 'docker-content-digest': blob.digest }, blobBody(blob), fault, true);
  }

  /** Lexical order, `n` and exclusive `last`, and a Link header for the next page, as the distribution spec says. */
  function sendTags(req: http.IncomingMessage, res: http.ServerResponse, name: string, tags: string[], params: URLSearchParams, fault: Fault | undefined): void {
    const last = params.get('last');
    const n = params.has('n') ? Number(params.get('n')) : Infinity;
    const after = last === null ? tags : tags.filter((t) => t > last);
    const page = after.slice(0, n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (page.length < after.length) headers.link = `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1) ?? '')}>; rel="next"`;
    send(req, res, headers, bufferBody(Buffer.from(JSON.stringify({ name, tags: page }))), fault, false);
  }

  const certDir = opts.tls ? makeTmpDir('ocimirror-fault-tls-') : undefined;
  const cert = certDir ? generateSelfSignedCert(certDir, 'ocimirror-fault-upstream') : undefined;
  const server = cert ? https.createServer({ cert: cert.cert, key: cert.key }, handle) : http.createServer(handle);
  server.requestTimeout = 0; // a stalled test must not be cut short by Node's own 300 s default
  const { port, close, connections, open } = await listenTracked(server, opts.host);
  const host = `${opts.host ?? '127.0.0.1'}:${port}`;

  function addImage(name: string, reference: string, image: BuiltImage): void {
    const r = repo(name);
    for (const blob of image.blobs) r.blobs.set(blob.digest, blob);
    r.manifests.set(image.manifestDigest, { data: image.manifest, mediaType: image.mediaType });
    if (!reference.includes(':')) r.tags.set(reference, image.manifestDigest);
  }

  return {
    url: `${cert ? 'https' : 'http'}://${host}`, host, port, ca: cert?.cert, caFile: cert?.certFile,
    add(name, tag, item) {
      if (!('images' in item)) return addImage(name, tag, item);
      for (const { image } of item.images) addImage(name, image.manifestDigest, image);
      const r = repo(name);
      r.manifests.set(item.manifestDigest, { data: item.manifest, mediaType: item.mediaType });
      r.tags.set(tag, item.manifestDigest);
    },
    fault: (match, fault, times = Infinity) => { faults.push({ ...match, fault, remaining: times }); },
    clearFaults: () => { faults = []; },
    rateLimit: (mode) => { limits = mode ? { ...mode, remaining: mode.remaining ?? mode.limit } : undefined; },
    get remaining() { return limits?.remaining; },
    connections,
    requests: () => seen.map((r) => ({ ...r, headers: { ...r.headers } })),
    count: (method, path) => seen.filter((r) => r.method === method.toUpperCase() && path.test(r.path)).length,
    openConnections: open,
    close: async () => { await close(); if (certDir) await removeTmpDir(certDir); },
  };
}

/** Listens on 127.0.0.1:0 and remembers every socket, so close() can end stalled connections instead of hanging. */
async function listenTracked(server: net.Server, address = '127.0.0.1'): Promise<{ port: number; connections(): number; open(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let total = 0;
  server.on('connection', (socket: net.Socket) => {
    total++;
    sockets.add(socket);
    socket.on('error', () => undefined); // resets we cause ourselves are expected
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, address, resolve); });
  const bound = server.address() as net.AddressInfo;
  return {
    port: bound.port,
    connections: () => total,
    open: () => sockets.size,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * A TCP server that accepts and never writes. With tls: true the URL is https://, so a client's TLS handshake never
 * completes (what a connect timeout looks like to undici); with tls: false it is a response-headers timeout.
 */
export async function startBlackhole(opts: { tls?: boolean } = {}): Promise<{ url: string; host: string; port: number; connections(): number; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.resume()); // drain what the client sends, answer nothing
  const { port, connections, close } = await listenTracked(server);
  const host = `127.0.0.1:${port}`;
  return { url: `${opts.tls ? 'https' : 'http'}://${host}`, host, port, connections, close };
}

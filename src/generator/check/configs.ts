// Findings for `configs:`: keys that no endpoint uses, credentials K3s ignores, and TLS settings that cannot work.
import { isScalar, type Node, type Pair } from 'yaml';
import { AUTH_KEYS, CONFIG_KEYS, TLS_KEYS } from '../../config/registries.js';
import type { FindingSink } from './findings.js';
import { freeFields, keyText, knownFields, stringValue } from './keys.js';
import type { MirrorSummary } from './mirrors.js';
import { keyMatches, readTlsFile, type TlsFileKind, type TlsFileResult } from './tls-files.js';

export interface FileCheckOptions {
  /** Check that TLS files exist and parse (run check on the node where they live). */
  readonly checkFiles: boolean;
  /** Directory relative TLS paths resolve against. */
  readonly base: string;
}

export function checkConfigs(sink: FindingSink, node: Node | null | undefined, mirrors: MirrorSummary, opts: FileCheckOptions): void {
  const pairs = freeFields(sink, node, 'configs');
  const keys = pairs.map((p) => keyText(p).toLowerCase());
  for (const pair of pairs) {
    const host = keyText(pair);
    const where = `configs."${host}"`;
    checkHostKey(sink, pair, host.toLowerCase(), mirrors, keys);
    const f = knownFields(sink, pair.value, where, CONFIG_KEYS);
    if (!f) continue;
    const auth = f.get('auth');
    if (auth) checkAuth(sink, auth.value, host, where);
    const tls = f.get('tls');
    if (tls) checkTls(sink, tls, host.toLowerCase(), where, mirrors, opts);
  }
}

function checkHostKey(sink: FindingSink, pair: Pair<Node, Node | null>, host: string, mirrors: MirrorSummary, keys: readonly string[]): void {
  const hosts = [...new Set(mirrors.endpoints.map((e) => e.host))];
  if (host === '*') {
    sink.add(pair.key, 'info', 'config-wildcard', 'configs."*" applies to every endpoint without its own entry on current K3s; K3s v1.21 (containerd 1.4) ignores it',
      'nothing on current K3s; on v1.21 key an entry by each endpoint host[:port]');
    return;
  }
  if (hosts.includes(host)) return;
  if (mirrors.registries.includes(host)) {
    const others = [...new Set(mirrors.endpoints.filter((e) => e.registry === host).map((e) => e.host))];
    const uncovered = others.filter((h) => !keys.includes(h));
    if (uncovered.length === 0) return;
    sink.add(pair.key, 'warning', 'config-key-is-mirror-name',
      `configs are keyed by endpoint host, not mirror name: "${host}" applies only to the registry's own endpoint (tried last), not to ${uncovered.join(', ')}`,
      `key this entry by "${uncovered[0]}"`);
    return;
  }
  const bare = host.replace(/^[a-z][a-z0-9+.-]*:\/\//, '').replace(/\/.*$/, '');
  const hostname = (h: string) => h.replace(/:\d+$/, '');
  const near = hosts.find((h) => h === bare || hostname(h) === hostname(bare));
  if (bare !== host || near) {
    sink.add(pair.key, 'warning', 'config-host-unmatched', `no endpoint uses the host "${host}"; K3s matches configs by exact host[:port]`,
      `key this entry by "${near ?? bare}"`);
    return;
  }
  sink.add(pair.key, 'info', 'config-host-unmatched', `no mirror endpoint uses "${host}": this entry applies only to images pulled from ${host} directly`,
    hosts.length ? `nothing if you pull from ${host} directly; otherwise key it by an endpoint host (${hosts.join(', ')})` : `nothing if you pull from ${host} directly`);
}

function checkAuth(sink: FindingSink, node: Node | null, host: string, where: string): void {
  const f = knownFields(sink, node, `${where}.auth`, AUTH_KEYS, (key, pair) => {
    if (key !== 'token') return false;
    sink.add(pair.key, 'error', 'auth-token', `${where}.auth.token is not read by K3s: no credentials are sent to ${host}`,
      'rename it to identity_token (or use username and password)');
    return true;
  });
  if (!f) return;
  const values = new Map<string, string>();
  for (const [k, p] of f) { const s = stringValue(sink, p, `${where}.auth.${k}`); if (s !== undefined) values.set(k, s); }
  const password = f.get('password');
  if (password && values.has('password')) {
    sink.add(password.value, 'info', 'password-plaintext', `plain-text password for ${host}: anyone who can read this file can use it`,
      'keep the file mode 0600, or move the credentials into the ocimirror proxy (generate k3s --from) so nodes hold none');
  }
  const complete = values.has('auth') || values.has('identity_token') || (values.has('username') && values.has('password'));
  if (values.size > 0 && !complete) {
    sink.add(node, 'warning', 'auth-incomplete', `${where}.auth has ${values.has('username') ? 'a username without a password' : 'a password without a username'}`,
      'set both username and password, or auth (base64 of user:pass), or identity_token');
  }
}

function checkTls(sink: FindingSink, pair: Pair<Node, Node | null>, host: string, where: string, mirrors: MirrorSummary, opts: FileCheckOptions): void {
  const f = knownFields(sink, pair.value, `${where}.tls`, TLS_KEYS);
  if (!f) return;
  const skip = f.get('insecure_skip_verify');
  if (skip) {
    const v = skip.value;
    if (!isScalar(v) || typeof v.value !== 'boolean') {
      sink.add(v ?? skip.key, 'error', 'wrong-type', `${where}.tls.insecure_skip_verify must be true or false`, 'write true or false, unquoted');
    } else if (v.value) {
      const on = mirrors.endpoints.filter((e) => e.host === host);
      if (on.length > 0 && on.every((e) => e.scheme === 'http')) {
        sink.add(skip.key, 'warning', 'skip-verify-http', `insecure_skip_verify does nothing: every endpoint on ${host} is plain http`,
          'remove it, or switch the endpoint to https:// if the registry serves TLS');
      }
    }
  }
  if (f.has('cert_file') !== f.has('key_file')) {
    sink.add(pair.key, 'warning', 'tls-pair-incomplete', `${where}.tls has ${f.has('cert_file') ? 'cert_file without key_file' : 'key_file without cert_file'}: no client certificate is sent`,
      'set cert_file and key_file together');
  }
  const loaded = new Map<TlsFileKind, TlsFileResult>();
  for (const kind of ['ca_file', 'cert_file', 'key_file'] as const) {
    const p = f.get(kind);
    if (!p) continue;
    const file = stringValue(sink, p, `${where}.tls.${kind}`);
    if (file === undefined || !opts.checkFiles) continue;
    const result = readTlsFile(kind, file, opts.base);
    if (result.problem) sink.add(p.value, 'error', result.problem.code, result.problem.message, result.problem.fix);
    loaded.set(kind, result);
  }
  const cert = loaded.get('cert_file')?.cert;
  const key = loaded.get('key_file')?.key;
  if (cert && key && !keyMatches(cert, key)) {
    sink.add(f.get('key_file')?.value, 'error', 'tls-key-mismatch', `${where}.tls.key_file is not the private key of cert_file`,
      'point key_file at the key the client certificate was issued for');
  }
}

// Do the files a `configs.<host>.tls` entry names exist on this machine, and are they what containerd expects?
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

export type TlsFileKind = 'ca_file' | 'cert_file' | 'key_file';

export interface TlsFileProblem {
  readonly code: 'tls-file-missing' | 'tls-file-invalid';
  readonly message: string;
  readonly fix: string;
}

export interface TlsFileResult {
  readonly problem?: TlsFileProblem;
  readonly cert?: X509Certificate;
  readonly key?: KeyObject;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads and parses one TLS file; relative paths resolve against `base` (K3s reads them as given). */
export function readTlsFile(kind: TlsFileKind, file: string, base: string): TlsFileResult {
  let text: string;
  try {
    text = readFileSync(resolve(base, file), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    return { problem: { code: 'tls-file-missing', message: `${kind} "${file}" cannot be read (${code}); containerd fails every pull from this host`,
      fix: `put the file at ${file} on this node, or run check with --no-files where it does not live` } };
  }
  try {
    if (kind === 'key_file') return { key: createPrivateKey(text) };
    const blocks = text.match(PEM_CERT) ?? [];
    if (blocks.length === 0) throw new Error('no PEM CERTIFICATE block');
    const certs = blocks.map((b) => new X509Certificate(b));
    return { cert: certs[0] as X509Certificate };
  } catch (e) {
    const what = kind === 'key_file' ? 'a PEM private key' : 'PEM certificates';
    return { problem: { code: 'tls-file-invalid', message: `${kind} "${file}" does not hold ${what}: ${(e as Error).message}`,
      fix: `point ${kind} at ${what}` } };
  }
}

/** True when the client certificate was issued for this private key. */
export function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  try { return cert.checkPrivateKey(key); } catch { return false; }
}

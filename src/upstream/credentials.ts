// Credentials from `configs.<endpoint host>.auth`, in the three forms K3s accepts.
import type { AuthEntry } from '../config/schema.js';

export interface Credentials {
  username?: string;
  password?: string;
  identityToken?: string;
}

export function credentialsFrom(auth: AuthEntry | undefined): Credentials | undefined {
  if (!auth) return undefined;
  if (auth.identity_token) return { identityToken: auth.identity_token, ...(auth.username ? { username: auth.username } : {}) };
  if (auth.username !== undefined || auth.password !== undefined) return { username: auth.username ?? '', password: auth.password ?? '' };
  if (auth.auth) {
    const decoded = Buffer.from(auth.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  return undefined;
}

export function basicHeader(c: Credentials): string | undefined {
  if (c.username === undefined || c.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

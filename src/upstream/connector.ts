// Connections to upstream hosts, checked at connect time: the address a name resolves to (and the address actually
// connected to) is judged, not the name, so DNS rebinding cannot smuggle a private address past the check.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { isPrivateAddress } from './addresses.js';

/** Injected by tests (a resolver of their own, loopback only); production uses the defaults. */
export interface NetworkHooks {
  /** Resolves every upstream host name (default: the system resolver). */
  lookup?: LookupFunction;
  /** Whether an address counts as private (default: isPrivateAddress). */
  isPrivate?: (address: string) => boolean;
  /** Last word on every address before it is connected to (tests: loopback only, whatever the config says). */
  permit?: (address: string) => boolean;
}

export class PrivateAddressError extends Error {
  override readonly name = 'PrivateAddressError';
  readonly code = 'ERR_PRIVATE_ADDRESS';
}

export interface ConnectGuard {
  /** May this connection reach a private address? Asked on every connect. */
  allowPrivate(): boolean;
  /** Told the address of every connection made. */
  onConnect?(address: string): void;
  hooks: NetworkHooks;
}

function refusal(guard: ConnectGuard, host: string, address: string): Error | undefined {
  if (guard.hooks.permit && !guard.hooks.permit(address)) return new PrivateAddressError(`${host} (${address}) is outside what this process may connect to`);
  if (!guard.allowPrivate() && (guard.hooks.isPrivate ?? isPrivateAddress)(address)) {
    return new PrivateAddressError(`refusing to connect to ${host}: ${address} is a private address (upstream.allowPrivateNetworks is off)`);
  }
  return undefined;
}

/** A lookup that drops refused addresses, and fails when none is left. */
export function guardedLookup(guard: ConnectGuard): LookupFunction {
  const base = guard.hooks.lookup ?? (dnsLookup as LookupFunction);
  return (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    base(hostname, { ...options, all: true }, (err, found) => {
      if (err) return callback(err, '', 0);
      const list = (Array.isArray(found) ? found : [{ address: found, family: isIP(found) }]) as LookupAddress[];
      const allowed = list.filter((a) => refusal(guard, hostname, a.address) === undefined);
      const first = allowed[0];
      if (!first) return callback(refusal(guard, hostname, list[0]?.address ?? '') ?? new PrivateAddressError(`${hostname} resolved to nothing`), '', 0);
      if (options.all) return callback(null, allowed);
      return callback(null, first.address, first.family);
    });
  };
}

/**
 * undici's connector with the guard applied: an IP-literal host is judged before any packet is sent, a name through
 * guardedLookup, and the connected socket's remote address once more.
 */
export function guardedConnector(options: buildConnector.BuildOptions, guard: ConnectGuard): buildConnector.connector {
  const inner = buildConnector({ ...options, lookup: guardedLookup(guard) } as buildConnector.BuildOptions);
  return (opts, callback) => {
    const host = opts.hostname.replace(/^\[|\]$/g, '');
    const early = isIP(host) ? refusal(guard, host, host) : undefined;
    if (early) return callback(early, null);
    inner(opts, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no socket'), null);
      const address = socket.remoteAddress ?? '';
      const late = refusal(guard, host, address);
      if (late) { socket.destroy(); return callback(late, null); }
      guard.onConnect?.(address);
      return callback(null, socket);
    });
  };
}

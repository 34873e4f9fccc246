// The network an in-process test proxy sees: a resolver of its own (localhost and the names a test lists, nothing
// else: no DNS query ever leaves the process) and a guard that refuses every non-loopback address, whatever the
// config says. With it a "*" mirror or a registry's own endpoint cannot reach a real registry.
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isLoopbackAddress } from '../../src/upstream/addresses.js';
import type { NetworkHooks } from '../../src/upstream/connector.js';

export interface TestNetworkOptions {
  /** Extra names → loopback addresses ("registry.example.test" → "127.0.0.1"). */
  hosts?: Record<string, string>;
  /** Override which addresses count as private (to play a public endpoint on loopback). */
  isPrivate?: (address: string) => boolean;
}

export interface TestNetwork extends NetworkHooks {
  /** Names looked up so far, in order. */
  readonly lookups: string[];
}

export function testNetwork(opts: TestNetworkOptions = {}): TestNetwork {
  const table = new Map<string, string>([['localhost', '127.0.0.1']]);
  for (const [name, address] of Object.entries(opts.hosts ?? {})) {
    if (!isLoopbackAddress(address)) throw new Error(`test network: ${name} → ${address} is not a loopback address`);
    table.set(name.toLowerCase(), address);
  }
  const lookups: string[] = [];
  const lookup = ((hostname: string, options: { all?: boolean }, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    lookups.push(hostname);
    const address = table.get(hostname.toLowerCase().replace(/\.$/, ''));
    process.nextTick(() => {
      if (!address) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (test network)`), { code: 'ENOTFOUND', hostname }), '', 0);
      const family = address.includes(':') ? 6 : 4;
      if (options.all) return callback(null, [{ address, family }]);
      return callback(null, address, family);
    });
  }) as LookupFunction;
  return { lookup, lookups, permit: isLoopbackAddress, ...(opts.isPrivate ? { isPrivate: opts.isPrivate } : {}) };
}

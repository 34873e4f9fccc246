// Which registry names a client may reach through "*" without upstream.allowPrivateNetworks: judged on the name,
// before any DNS query. Names that pass are judged again on the address they resolve to (connector.ts).
import { ipLiteral } from './addresses.js';

/** Why `registry` may not be served through "*", or undefined when it may. */
export function wildcardRefusal(registry: string, allowPrivateNetworks: boolean): string | undefined {
  if (allowPrivateNetworks) return undefined;
  if (ipLiteral(registry) !== undefined) return 'an IP address';
  const host = registry.replace(/:\d+$/, '').toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return 'a loopback name';
  // A single label is looked up through the resolver's search domains: an internal name by construction.
  if (!host.includes('.')) return 'a name without a domain';
  return undefined;
}

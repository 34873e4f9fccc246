// Which addresses a "*" registry, a redirect or a token realm may make ocimirror connect to: everything that is not
// the public internet (loopback, RFC 1918, ULA, link-local, CGNAT, multicast, unspecified, reserved) is private.
import { BlockList, isIP } from 'node:net';

const V4 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) V4.addSubnet(net, bits, 'ipv4');

const V6 = new BlockList();
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) V6.addSubnet(net, bits, 'ipv6');

/** The eight 16-bit groups of a valid IPv6 address (a trailing dotted IPv4 part included). */
export function ipv6Groups(ip: string): number[] {
  let text = ip.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = (dotted[1] as string).split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((g) => parseInt(g, 16));
}

function v4FromGroups(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** True for any address that is not plainly on the public internet. */
export function isPrivateAddress(ip: string): boolean {
  const address = ip.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(address);
  if (family === 4) return V4.check(address, 'ipv4');
  if (family !== 6) return true;
  const g = ipv6Groups(address);
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const low96Zero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  // ::/96 holds ::, ::1 and the deprecated IPv4-compatible form: never public.
  if (low96Zero && g5 === 0) return true;
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach the IPv4 address inside.
  if (low96Zero && g5 === 0xffff) return V4.check(v4FromGroups(g6, g7), 'ipv4');
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return V4.check(v4FromGroups(g6, g7), 'ipv4');
  // 6to4 (2002:a.b.c.d::/48) reaches the IPv4 address it embeds.
  if (g0 === 0x2002) return V4.check(v4FromGroups(g1, g2), 'ipv4');
  return V6.check(address, 'ipv6');
}

export function isLoopbackAddress(ip: string): boolean {
  const address = ip.replace(/^\[|\]$/g, '');
  if (isIP(address) === 4) return address.startsWith('127.');
  if (isIP(address) !== 6) return false;
  const g = ipv6Groups(address);
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  return mapped ? (g[6] as number) >> 8 === 127 : g.slice(0, 7).every((x) => x === 0) && g[7] === 1;
}

/**
 * The address a host names when it is an IP literal in any spelling the URL parser (and so undici) accepts:
 * "127.1", "0x7f.1", "2130706433", "0177.0.0.1", "[::ffff:127.0.0.1]", "127.0.0.1." — else undefined.
 */
export function ipLiteral(host: string): string | undefined {
  if (isIP(host)) return host;
  let hostname: string;
  try { hostname = new URL(`http://${host.replace(/:\d*$/, '')}`).hostname; } catch { return undefined; }
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return bare;
  const undotted = bare.replace(/\.$/, '');
  return undotted !== bare ? ipLiteral(undotted) : undefined;
}

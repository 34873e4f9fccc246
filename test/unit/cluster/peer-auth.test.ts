// Requests between replicas: a signature is good for exactly one method and path, with the cluster's secret,
// within a minute of the receiver's clock; anything else is refused.
import { describe, expect, it } from 'vitest';
import { signPeerRequest, verifyPeerRequest } from '../../../src/cluster/peer-auth.js';

const SECRET = 'a'.repeat(64);
const PATH = `/_ocimirror/fills/sha256:${'b'.repeat(64)}`;
const NOW = 1_800_000_000_000;

describe('peer request signatures', () => {
  it('accepts its own signature of the same method and path within the window', () => {
    const header = signPeerRequest(SECRET, 'GET', PATH, NOW);
    expect(verifyPeerRequest(SECRET, header, 'GET', PATH, NOW)).toBe(true);
    expect(verifyPeerRequest(SECRET, header, 'GET', PATH, NOW + 59_000)).toBe(true);
    expect(verifyPeerRequest(SECRET, header, 'GET', PATH, NOW - 59_000)).toBe(true);
  });

  it('refuses another path, method or secret, an old or future signature, and malformed headers', () => {
    const header = signPeerRequest(SECRET, 'GET', PATH, NOW);
    expect(verifyPeerRequest(SECRET, header, 'GET', `${PATH}0`, NOW)).toBe(false);
    expect(verifyPeerRequest(SECRET, header, 'HEAD', PATH, NOW)).toBe(false);
    expect(verifyPeerRequest('c'.repeat(64), header, 'GET', PATH, NOW)).toBe(false);
    expect(verifyPeerRequest(SECRET, header, 'GET', PATH, NOW + 61_000)).toBe(false);
    expect(verifyPeerRequest(SECRET, header, 'GET', PATH, NOW - 61_000)).toBe(false);
    const [at, mac] = header.split(':') as [string, string];
    for (const bad of [undefined, '', 'x', `${at}:`, `:${mac}`, `${Number(at) + 1}:${mac}`, `${at}:${mac.toUpperCase()}`, `${at}:${mac}00`]) {
      expect(verifyPeerRequest(SECRET, bad, 'GET', PATH, NOW), String(bad)).toBe(false);
    }
  });
});

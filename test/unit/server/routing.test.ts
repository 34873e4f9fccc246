// Which registry a request is for: decoded ?ns= → a configured /v2/<registry>/ prefix → the default registry;
// anything not configured is refused (never an open proxy). The one lookup that decides it yields the mirror entry.
import { describe, expect, it } from 'vitest';
import { OciError } from '../../../src/oci/errors.js';
import { resolveRoute, type RoutingTable } from '../../../src/server/routing.js';

interface Entry { entry: string }

/** Mirror entries as the routing table resolves them: the registry's own, else "*" when configured. */
function table(registries: string[], defaultRegistry = 'docker.io'): RoutingTable<Entry> & { lookups: string[] } {
  const entries = new Map(registries.map((r) => [r, { entry: r }]));
  const lookups: string[] = [];
  return { defaultRegistry, lookups, resolve: (r) => { lookups.push(r); return entries.get(r) ?? entries.get('*'); } };
}

function refused(fn: () => unknown): { code: string; status: number } | undefined {
  try { fn(); } catch (err) { if (err instanceof OciError) return { code: err.code, status: err.status }; throw err; }
  return undefined;
}

const t = table(['docker.io', 'ghcr.io', '127.0.0.1:5001', 'localhost:5000']);

describe('routing by ?ns=', () => {
  it('uses the decoded ns (URLSearchParams has already decoded %3A)', () => {
    const ns = new URLSearchParams('ns=127.0.0.1%3A5001').get('ns') ?? undefined;
    expect(ns).toBe('127.0.0.1:5001');
    expect(resolveRoute('library/x', ns, t)).toEqual({ registry: '127.0.0.1:5001', mirror: { entry: '127.0.0.1:5001' }, repo: 'library/x', clientName: 'library/x', viaNs: true });
  });

  it('ns wins over a path prefix', () => {
    expect(resolveRoute('ghcr.io/org/app', 'docker.io', t)).toMatchObject({ registry: 'docker.io', repo: 'ghcr.io/org/app' });
  });

  it('is case-insensitive', () => {
    expect(resolveRoute('org/app', 'GHCR.IO', t).registry).toBe('ghcr.io');
  });

  it('Docker Hub single-component names get library/', () => {
    expect(resolveRoute('alpine', 'docker.io', t).repo).toBe('library/alpine');
    expect(resolveRoute('bitnami/redis', 'docker.io', t).repo).toBe('bitnami/redis');
    expect(resolveRoute('app', 'ghcr.io', t).repo).toBe('app');
  });

  it('an unconfigured or malformed ns is refused with a 4xx', () => {
    expect(refused(() => resolveRoute('x/y', 'quay.io', t))).toEqual({ code: 'NAME_UNKNOWN', status: 404 });
    expect(refused(() => resolveRoute('x/y', 'not a host', t))).toEqual({ code: 'NAME_INVALID', status: 400 });
    expect(refused(() => resolveRoute('x/y', '*', t))).toEqual({ code: 'NAME_INVALID', status: 400 });
  });

  it('an empty ns is ignored', () => {
    expect(resolveRoute('alpine', '', t)).toMatchObject({ registry: 'docker.io', repo: 'library/alpine', viaNs: false });
  });
});

describe('routing by path prefix', () => {
  it('a configured first component with "." names the registry', () => {
    expect(resolveRoute('ghcr.io/org/app', undefined, t)).toEqual({ registry: 'ghcr.io', mirror: { entry: 'ghcr.io' }, repo: 'org/app', clientName: 'ghcr.io/org/app', viaNs: false });
  });

  it('with ":" (host:port) and localhost', () => {
    expect(resolveRoute('127.0.0.1:5001/library/x', undefined, t)).toMatchObject({ registry: '127.0.0.1:5001', repo: 'library/x' });
    expect(resolveRoute('localhost:5000/x', undefined, t)).toMatchObject({ registry: 'localhost:5000', repo: 'x' });
  });

  it('docker.io as a prefix, with library/ for single names', () => {
    expect(resolveRoute('docker.io/alpine', undefined, t)).toMatchObject({ registry: 'docker.io', repo: 'library/alpine' });
    expect(resolveRoute('docker.io/library/alpine', undefined, t)).toMatchObject({ registry: 'docker.io', repo: 'library/alpine' });
  });

  it('a component without "." or ":" is never a registry', () => {
    const withLocal = table(['docker.io', 'myregistry']);
    expect(resolveRoute('myregistry/app', undefined, withLocal)).toMatchObject({ registry: 'docker.io', repo: 'myregistry/app' });
  });

  it('"*" makes any registry-like prefix a registry, served by the "*" entry', () => {
    expect(resolveRoute('quay.io/org/app', undefined, table(['*']))).toMatchObject({ registry: 'quay.io', mirror: { entry: '*' }, repo: 'org/app' });
  });

  it('an unconfigured registry prefix is refused, not sent to the default registry as a repository name', () => {
    for (const name of ['10.0.0.9:5000/org/app', 'quay.io/org/app', 'registry.example.com/app']) {
      const status = refused(() => resolveRoute(name, undefined, t))?.status;
      expect(status, name).toBeGreaterThanOrEqual(400);
      expect(status, name).toBeLessThan(500);
    }
  });
});

describe('default registry', () => {
  it('no ns and no prefix → defaultRegistry', () => {
    expect(resolveRoute('library/alpine', undefined, t)).toMatchObject({ registry: 'docker.io', repo: 'library/alpine' });
    expect(resolveRoute('alpine', undefined, t)).toMatchObject({ registry: 'docker.io', repo: 'library/alpine' });
    expect(resolveRoute('org/app', undefined, table(['ghcr.io'], 'ghcr.io'))).toMatchObject({ registry: 'ghcr.io', repo: 'org/app' });
  });

  it('an unconfigured default registry is refused', () => {
    expect(refused(() => resolveRoute('alpine', undefined, table(['ghcr.io'])))).toEqual({ code: 'NAME_UNKNOWN', status: 404 });
  });
});

describe('name grammar is checked after routing', () => {
  it('invalid repository names are NAME_INVALID', () => {
    expect(refused(() => resolveRoute('Library/Alpine', 'docker.io', t))).toEqual({ code: 'NAME_INVALID', status: 400 });
    expect(refused(() => resolveRoute('ghcr.io/UP', undefined, t))).toEqual({ code: 'NAME_INVALID', status: 400 });
  });
});

describe('one lookup per request', () => {
  it('the lookup that decides "served" is the one whose mirror entry the route carries', () => {
    const once = table(['docker.io', 'ghcr.io']);
    const route = resolveRoute('ghcr.io/org/app', undefined, once);
    expect(once.lookups).toEqual(['ghcr.io']);
    expect(route.mirror).toEqual({ entry: 'ghcr.io' });
    expect(refused(() => resolveRoute('x/y', 'quay.io', once))).toEqual({ code: 'NAME_UNKNOWN', status: 404 });
    expect(once.lookups).toEqual(['ghcr.io', 'quay.io']);
  });
});

// Endpoint normalisation must match K3s (pkg/agent/containerd normalizeEndpointAddress), or the same
// registries.yaml would reach different URLs through ocimirror and through a K3s node.
import { describe, expect, it } from 'vitest';
import { defaultEndpoint, isLocalhost, normaliseEndpoint } from '../../../src/config/endpoints.js';

const norm = (raw: string) => {
  const e = normaliseEndpoint(raw);
  return { origin: e.origin, apiRoot: e.apiRoot, host: e.host };
};

describe('normaliseEndpoint: scheme', () => {
  it('keeps an explicit scheme', () => {
    expect(norm('http://registry.example.com')).toEqual({ origin: 'http://registry.example.com', apiRoot: '/v2', host: 'registry.example.com' });
    expect(norm('https://127.0.0.1:5000')).toEqual({ origin: 'https://127.0.0.1:5000', apiRoot: '/v2', host: '127.0.0.1:5000' });
  });

  it('defaults to https for a remote host, with or without a port', () => {
    expect(norm('registry.example.com').origin).toBe('https://registry.example.com');
    expect(norm('registry.example.com:5000').origin).toBe('https://registry.example.com:5000');
    expect(norm('10.0.0.7:5000').origin).toBe('https://10.0.0.7:5000');
  });

  it('defaults to http for localhost / loopback on a port other than 443', () => {
    expect(norm('localhost:5000').origin).toBe('http://localhost:5000');
    expect(norm('127.0.0.1:5000').origin).toBe('http://127.0.0.1:5000');
    expect(norm('127.1.2.3:8080').origin).toBe('http://127.1.2.3:8080');
    expect(norm('[::1]:5000').origin).toBe('http://[::1]:5000');
    expect(norm('localhost:80').origin).toBe('http://localhost:80');
  });

  it('defaults to https for loopback on port 443', () => {
    expect(norm('localhost:443').origin).toBe('https://localhost:443');
    expect(norm('127.0.0.1:443').origin).toBe('https://127.0.0.1:443');
  });

  it('defaults to https for loopback without a port (K3s: port != "" && port != "443")', () => {
    expect(norm('localhost').origin).toBe('https://localhost');
    expect(norm('127.0.0.1').origin).toBe('https://127.0.0.1');
  });

  it('lower-cases the host and keeps the port as written', () => {
    expect(norm('HTTPS://Registry.Example.COM:5000').origin).toBe('https://registry.example.com:5000');
    expect(norm('HTTPS://Registry.Example.COM:5000').host).toBe('registry.example.com:5000');
  });
});

describe('normaliseEndpoint: path', () => {
  it.each(['', '/', '/v2'])('path %j is the standard /v2 API root', (path) => {
    expect(norm(`https://r.example.com${path}`).apiRoot).toBe('/v2');
    expect(norm(`r.example.com${path}`).apiRoot).toBe('/v2');
  });

  it('uses any other path verbatim as the API root (override_path)', () => {
    expect(norm('https://harbor.example.com/v2/proxy-cache').apiRoot).toBe('/v2/proxy-cache');
    expect(norm('https://nexus.example.com/repository/docker').apiRoot).toBe('/repository/docker');
    expect(norm('127.0.0.1:5000/custom/root')).toEqual({ origin: 'http://127.0.0.1:5000', apiRoot: '/custom/root', host: '127.0.0.1:5000' });
  });
});

describe('normaliseEndpoint: Docker Hub', () => {
  it('an endpoint named docker.io is served by registry-1.docker.io (K3s applies docker.DefaultHost)', () => {
    expect(norm('docker.io').origin).toBe('https://registry-1.docker.io');
    expect(norm('https://docker.io').origin).toBe('https://registry-1.docker.io');
  });
});

describe('defaultEndpoint', () => {
  it('docker.io and index.docker.io → https://registry-1.docker.io/v2', () => {
    for (const r of ['docker.io', 'index.docker.io']) {
      const e = defaultEndpoint(r);
      expect([e.origin, e.apiRoot, e.isDefault]).toEqual(['https://registry-1.docker.io', '/v2', true]);
    }
  });

  it('other registries are their own endpoint, normalised the same way', () => {
    expect(defaultEndpoint('ghcr.io').origin).toBe('https://ghcr.io');
    expect(defaultEndpoint('127.0.0.1:5000').origin).toBe('http://127.0.0.1:5000');
    expect(normaliseEndpoint('ghcr.io').isDefault).toBe(false);
  });
});

describe('isLocalhost', () => {
  it.each(['localhost', 'LOCALHOST', '127.0.0.1', '127.255.0.9', '::1', '[::1]'])('%s is loopback', (h) => expect(isLocalhost(h)).toBe(true));
  it.each(['localhost.example.com', '128.0.0.1', '10.0.0.1', 'example.com', '1127.0.0.1'])('%s is not', (h) => expect(isLocalhost(h)).toBe(false));
});

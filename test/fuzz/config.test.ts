// Property tests of the configuration loader and the endpoint normaliser: any text or any YAML value gives a frozen
// Config or a ConfigError whose every problem names the file (and line:col); an endpoint the loader accepts always normalises
// to an http(s) origin and an API root, and loading never lets an inherited name become an entry.
import fc from 'fast-check';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { endpointProblem } from '../../src/config/registries.js';
import { normaliseEndpoint } from '../../src/config/endpoints.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { fuzzRuns } from '../helpers/fuzz.js';

function loadOrProblems(text: string): void {
  try {
    const config = parseConfig('c.yaml', text, { checkFiles: false });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.getPrototypeOf(config.mirrors)).toBeNull();
    expect(Object.getPrototypeOf(config.configs)).toBeNull();
    for (const [registry, m] of Object.entries(config.mirrors)) {
      expect(Object.hasOwn(config.mirrors, registry)).toBe(true);
      for (const e of m.endpoint) expect(endpointProblem(e)).toBeUndefined();
    }
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    // The file at fault: this one, or the registries.yaml it names.
    for (const p of (err as ConfigError).problems) expect(/^c\.yaml(:\d+:\d+)?: /.test(p) || p.startsWith('/'), p).toBe(true);
  }
}

const keys = fc.constantFrom('server', 'cache', 'upstream', 'mirrors', 'configs', 'log', 'defaultRegistry', 'registries', '__proto__', 'constructor', 'listen', 'endpoint', 'rewrite', 'auth', 'tls', 'health', '*', 'docker.io');
const leaf = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('5s', '20GiB', 'https://a.example', '127.0.0.1:0', '-1s', '1e9'));
const yamlValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(keys, tie('value'), { maxKeys: 4 })),
})).value;

describe('the configuration loader (properties)', () => {
  it('any text: a Config or a ConfigError with file:line:col problems, nothing else', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), loadOrProblems), fuzzRuns());
  });

  it('any YAML structure built from real keys: the same', () => {
    fc.assert(fc.property(fc.dictionary(keys, yamlValue, { maxKeys: 6 }), (doc) => loadOrProblems(YAML.stringify(doc))), fuzzRuns());
  });

  it('mirrors with any registry-like keys: only the keys written are entries', () => {
    const registry = fc.oneof(fc.constantFrom('constructor', 'toString', '__proto__', 'hasOwnProperty', 'docker.io', '*'), fc.domain());
    fc.assert(fc.property(fc.uniqueArray(registry, { maxLength: 5 }), fc.string({ maxLength: 15 }), (registries, probe) => {
      const doc = { mirrors: Object.fromEntries(registries.map((r) => [r, { endpoint: ['https://e.example'] }])) };
      let config;
      try { config = parseConfig('c.yaml', YAML.stringify(doc)); } catch (err) { expect(err).toBeInstanceOf(ConfigError); return; }
      expect(Object.keys(config.mirrors).sort()).toEqual(registries.filter((r) => r !== '__proto__').sort());
      if (!registries.includes(probe)) expect((config.mirrors as Record<string, unknown>)[probe]).toBeUndefined();
    }), fuzzRuns());
  });
});

describe('the endpoint normaliser (properties)', () => {
  const endpointish = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.webUrl({ withQueryParameters: false, withFragments: false }),
    fc.tuple(fc.constantFrom('', 'http://', 'https://', 'HTTPS://', 'ftp://'), fc.domain(), fc.option(fc.nat({ max: 70000 })), fc.constantFrom('', '/', '/v2', '/v2/', '/v2/proj', '//x'))
      .map(([s, h, p, path]) => `${s}${h}${p === null ? '' : `:${p}`}${path}`),
  );

  it('an endpoint the loader accepts normalises to an http(s) origin, a host and an API root', () => {
    fc.assert(fc.property(endpointish, (raw) => {
      if (endpointProblem(raw) !== undefined) return;
      const e = normaliseEndpoint(raw);
      expect(e.origin).toMatch(/^https?:\/\/[^/\s]+$/);
      expect(e.origin.endsWith(e.host)).toBe(true);
      expect(e.apiRoot.startsWith('/')).toBe(true);
      expect(e.apiRoot === '/v2' || !/^\/v2\/?$/.test(e.apiRoot)).toBe(true);
      expect(new URL(`${e.origin}${e.apiRoot}`).origin).toBe(new URL(e.origin).origin);
    }), fuzzRuns());
  });
});

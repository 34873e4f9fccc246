// Property tests of the headers ocimirror parses: Range (from clients), WWW-Authenticate and Link (from upstreams).
// Whatever arrives, parsing never throws, plans stay inside the blob, and a rewritten Link can carry nothing but a
// URL back to this proxy.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRange, planLength, planRange } from '../../src/oci/range.js';
import { rewriteLink } from '../../src/server/lists.js';
import { parseWwwAuthenticate } from '../../src/upstream/www-authenticate.js';
import { fuzzRuns } from '../helpers/fuzz.js';

const digits = fc.oneof(fc.nat({ max: 2 ** 40 }).map(String), fc.stringMatching(/^\d{0,30}$/));
const rangeHeader = fc.oneof(
  fc.tuple(digits, digits).map(([a, b]) => `bytes=${a}-${b}`),
  fc.tuple(digits, digits, fc.constantFrom(' ', '', 'bytes =', ',0-1', '\t')).map(([a, b, s]) => `bytes=${a}-${b}${s}`),
  fc.string({ maxLength: 60 }),
);

describe('Range (properties)', () => {
  it('any header and size: the plan is head, full, unsatisfiable, or a partial range inside the blob', () => {
    fc.assert(fc.property(rangeHeader, fc.nat({ max: 2 ** 40 }), fc.constantFrom('GET', 'HEAD') as fc.Arbitrary<'GET' | 'HEAD'>, (header, size, method) => {
      const range = parseRange(header);
      if (range) {
        expect(range.start).toBeGreaterThanOrEqual(0);
        if (range.end !== undefined) expect(range.end).toBeGreaterThanOrEqual(range.start);
      }
      const plan = planRange(method, range, size);
      if (method === 'HEAD') expect(plan.kind).toBe('head');
      if (plan.kind === 'partial') {
        expect(Number.isSafeInteger(plan.start) && Number.isSafeInteger(plan.end)).toBe(true);
        expect(plan.start).toBeGreaterThanOrEqual(0);
        expect(plan.end).toBeLessThan(size);
        expect(planLength(plan)).toBeGreaterThan(0);
      }
      if (plan.kind === 'full') expect(plan.end).toBe(size - 1);
    }), fuzzRuns());
  });

  it('a well-formed range of a blob it fits is served exactly', () => {
    fc.assert(fc.property(fc.nat({ max: 10_000 }), fc.nat({ max: 10_000 }), fc.integer({ min: 1, max: 20_000 }), (a, b, size) => {
      const [start, end] = a <= b ? [a, b] : [b, a];
      const plan = planRange('GET', parseRange(`bytes=${start}-${end}`), size);
      expect(plan).toEqual(start < size ? { kind: 'partial', start, end: Math.min(end, size - 1) } : { kind: 'unsatisfiable' });
    }), fuzzRuns());
  });
});

const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
const quotable = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, ''));
const quote = (v: string) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`;

describe('WWW-Authenticate (properties)', () => {
  it('any header: never throws; schemes are lower-case tokens and every param value a string', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.array(fc.string({ maxLength: 80 }), { maxLength: 4 })), (header) => {
      for (const c of parseWwwAuthenticate(header)) {
        expect(c.scheme).toMatch(/^[a-z0-9!#$%&'*+.^_`|~/-]+$/);
        for (const [k, v] of Object.entries(c.params)) {
          expect(k).toBe(k.toLowerCase());
          expect(typeof v).toBe('string');
        }
      }
    }), fuzzRuns());
  });

  it('challenges written per RFC 7235 come back as written (quoted values, any spacing, any case of names)', () => {
    const param = fc.tuple(token, quotable, fc.constantFrom('=', ' = ', '= '));
    const challenge = fc.tuple(token, fc.uniqueArray(param, { maxLength: 4, selector: ([k]) => k.toLowerCase() }));
    fc.assert(fc.property(fc.array(challenge, { minLength: 1, maxLength: 3 }), (challenges) => {
      const header = challenges.map(([scheme, params]) => `${scheme} ${params.map(([k, v, eq]) => `${k}${eq}${quote(v)}`).join(', ')}`).join(', ');
      const parsed = parseWwwAuthenticate(header);
      const expected = challenges.map(([scheme, params]) => ({ scheme: scheme.toLowerCase(), params: Object.fromEntries(params.map(([k, v]) => [k.toLowerCase(), v])) }));
      // A challenge without params next to one that follows reads the same either way; compare the ones with params.
      expect(parsed.filter((c) => Object.keys(c.params).length > 0)).toEqual(expected.filter((c) => Object.keys(c.params).length > 0));
    }), fuzzRuns());
  });
});

describe('Link rewriting (properties)', () => {
  const route = (viaNs: boolean) => ({ registry: 'docker.io', mirror: undefined, repo: 'library/x', clientName: 'library/x', viaNs });

  it('any upstream Link: nothing, or one URL back to this proxy without CR, LF or a second link', () => {
    const link = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.tuple(fc.string({ maxLength: 80 }), fc.string({ maxLength: 20 })).map(([u, rel]) => `<${u}>; rel="${rel}"`),
      fc.tuple(fc.webUrl({ withQueryParameters: true }), fc.constantFrom('next', '"next"', 'prev')).map(([u, rel]) => `<${u}>; rel=${rel}`),
    );
    fc.assert(fc.property(link, fc.boolean(), (header, viaNs) => {
      const out = rewriteLink(header, route(viaNs), 'tags/list');
      if (out === undefined) return;
      expect(out).toMatch(/^<\/v2\/library\/x\/tags\/list\?[^<>\s]*>; rel="next"$/);
      const params = new URLSearchParams(/\?([^>]*)>/.exec(out)?.[1] ?? '');
      expect(params.getAll('ns')).toEqual(viaNs ? ['docker.io'] : []);
    }), fuzzRuns());
  });
});

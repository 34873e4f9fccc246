import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from '../../../src/upstream/www-authenticate.js';

describe('parseWwwAuthenticate', () => {
  it('parses the Docker Hub Bearer challenge', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
  });

  it('parses Basic, with a realm containing spaces', () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    expect(parseWwwAuthenticate('Basic')).toEqual([{ scheme: 'basic', params: {} }]);
  });

  it('keeps commas and spaces inside quoted values (multi-action and multi-scope)', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://a/token",scope="repository:a:pull,push"')[0]?.params.scope).toBe('repository:a:pull,push');
    expect(parseWwwAuthenticate('Bearer realm="a,b",service="s"')[0]?.params).toEqual({ realm: 'a,b', service: 's' });
    expect(parseWwwAuthenticate('Bearer realm="r",scope="repository:a:pull repository:b:pull"')[0]?.params.scope).toBe('repository:a:pull repository:b:pull');
  });

  it('unescapes quoted-pairs and accepts unquoted tokens', () => {
    expect(parseWwwAuthenticate('Bearer realm="x\\"y",error="invalid_token"')[0]?.params).toEqual({ realm: 'x"y', error: 'invalid_token' });
    expect(parseWwwAuthenticate('Bearer realm=https://a/token,service=s')[0]?.params).toEqual({ realm: 'https://a/token', service: 's' });
  });

  it('scheme names are case-insensitive; spaces after commas are fine', () => {
    expect(parseWwwAuthenticate('BEARER realm="https://a/token", service="reg", scope="repository:a:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://a/token', service: 'reg', scope: 'repository:a:pull' } },
    ]);
  });

  it('accepts whitespace around "=" (RFC 7235: token BWS "=" BWS value)', () => {
    expect(parseWwwAuthenticate('Bearer realm = "https://a/token" , service = "reg"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://a/token', service: 'reg' } },
    ]);
  });

  it('parses several challenges, in one header or in several', () => {
    const expected = [{ scheme: 'basic', params: { realm: 'x' } }, { scheme: 'bearer', params: { realm: 'https://a/token', service: 's' } }];
    expect(parseWwwAuthenticate('Basic realm="x", Bearer realm="https://a/token",service="s"')).toEqual(expected);
    expect(parseWwwAuthenticate(['Basic realm="x"', 'Bearer realm="https://a/token",service="s"'])).toEqual(expected);
  });

  it('nothing to parse', () => {
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('Negotiate')).toEqual([{ scheme: 'negotiate', params: {} }]);
  });

  it('an upstream\'s "__proto__" or "constructor" parameter is a parameter, never the prototype (found by test/fuzz)', () => {
    const [c] = parseWwwAuthenticate('Bearer __proto__="x",constructor="y",realm="https://a/token"');
    expect(Object.keys(c!.params)).toEqual(['__proto__', 'constructor', 'realm']);
    expect(c!.params.realm).toBe('https://a/token');
    expect(Object.getPrototypeOf(c!.params)).toBeNull();
  });
});

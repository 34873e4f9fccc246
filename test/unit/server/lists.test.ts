// tags/list pagination: the upstream Link points at the upstream; rewritten, it points back here and keeps ns.
import { describe, expect, it } from 'vitest';
import { rewriteLink } from '../../../src/server/lists.js';
import type { Route } from '../../../src/server/routing.js';

const viaNs: Route = { registry: '127.0.0.1:5001', mirror: undefined, repo: 'library/x', clientName: 'library/x', viaNs: true };
const viaPrefix: Route = { registry: 'ghcr.io', mirror: undefined, repo: 'org/app', clientName: 'ghcr.io/org/app', viaNs: false };

describe('rewriteLink', () => {
  it('keeps ns (encoded) and the client\'s name', () => {
    const link = rewriteLink('</v2/library/x/tags/list?n=2&last=b>; rel="next"', viaNs, 'tags/list');
    expect(link).toBe('</v2/library/x/tags/list?n=2&last=b&ns=127.0.0.1%3A5001>; rel="next"');
    const u = new URL(/<([^>]*)>/.exec(link!)![1]!, 'http://proxy');
    expect(u.searchParams.get('ns')).toBe('127.0.0.1:5001');
  });

  it('keeps the registry prefix a podman client used', () => {
    expect(rewriteLink('</v2/org/app/tags/list?n=10&last=v1.0>; rel="next"', viaPrefix, 'tags/list')).toBe('</v2/ghcr.io/org/app/tags/list?n=10&last=v1.0>; rel="next"');
  });

  it('drops the upstream host of an absolute Link and any ns the upstream put in', () => {
    expect(rewriteLink('<https://upstream.example/v2/org/app/tags/list?last=z&n=5&ns=evil.io>; rel=next', viaPrefix, 'tags/list')).toBe('</v2/ghcr.io/org/app/tags/list?last=z&n=5>; rel="next"');
  });

  it('a Link without rel="next" is dropped', () => {
    expect(rewriteLink('</v2/x/tags/list?n=1>; rel="prev"', viaNs, 'tags/list')).toBeUndefined();
    expect(rewriteLink('garbage', viaNs, 'tags/list')).toBeUndefined();
  });
});

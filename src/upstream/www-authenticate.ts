// WWW-Authenticate parsing (RFC 7235: challenges of auth-params, with optional whitespace around "=").

export interface Challenge {
  scheme: string; // lower-case: "bearer", "basic"
  params: Record<string, string>;
}

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~/-]+/;

/** Parses one or more challenges: `Bearer realm="https://auth",service="x",scope="repository:a:pull"`. */
export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  let s = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  let cur: Challenge | undefined;
  const skip = (re: RegExp) => { s = s.replace(re, ''); };
  for (;;) {
    skip(/^[\s,]+/);
    const tok = TOKEN.exec(s)?.[0];
    if (!tok) break;
    s = s.slice(tok.length);
    const afterWs = s.replace(/^\s+/, '');
    if (afterWs.startsWith('=') && cur) {
      // An auth-param: name BWS "=" BWS (token | quoted-string).
      s = afterWs.slice(1).replace(/^\s+/, '');
      let value: string;
      if (s.startsWith('"')) {
        const m = /^"((?:[^"\\]|\\.)*)"/.exec(s);
        value = (m?.[1] ?? s.slice(1)).replace(/\\(.)/g, '$1');
        s = m ? s.slice(m[0].length) : '';
      } else {
        // Lenient: registries send unquoted URLs, which are not RFC tokens; take everything up to a comma.
        value = /^[^,\s]*/.exec(s)?.[0] ?? '';
        s = s.slice(value.length);
      }
      cur.params[tok.toLowerCase()] = value;
    } else {
      // No prototype: an upstream's "__proto__=x" or "constructor=x" is a parameter like any other.
      cur = { scheme: tok.toLowerCase(), params: Object.create(null) as Record<string, string> };
      out.push(cur);
    }
  }
  return out;
}

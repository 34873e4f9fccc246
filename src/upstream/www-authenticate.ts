// WWW-Authenticate parsing (RFC 7235 auth-params, as registries send them).

export interface Challenge {
  scheme: string; // lower-case: "bearer", "basic"
  params: Record<string, string>;
}

/** Parses one or more challenges: `Bearer realm="https://auth",service="x",scope="repository:a:pull"`. */
export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9._~+/-]*)(?:\s+|$)|\s*([A-Za-z0-9._~+/-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*,?/y;
  let i = 0;
  let cur: Challenge | undefined;
  while (i < text.length) {
    re.lastIndex = i;
    // Skip separators between challenges/params.
    if (text[i] === ',' || text[i] === ' ') { i++; continue; }
    const m = re.exec(text);
    if (!m || m.index !== i) break;
    if (m[1] !== undefined && !/=/.test(text.slice(i, re.lastIndex))) {
      cur = { scheme: m[1].toLowerCase(), params: {} };
      out.push(cur);
    } else if (m[2] !== undefined && cur) {
      const value = m[4] !== undefined ? m[4].replace(/\\(.)/g, '$1') : (m[3] as string);
      cur.params[m[2].toLowerCase()] = value;
    }
    i = re.lastIndex;
  }
  return out;
}

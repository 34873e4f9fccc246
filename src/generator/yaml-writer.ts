// A tiny YAML emitter for generated files: block style, every string double-quoted (so "*", "yes", "0x1" and
// "host:5000" can never change meaning), keys in the order given, comments where the reader needs them.

export type YamlScalar = string | number | boolean;
export type YamlValue = YamlScalar | readonly string[] | YamlMap;
export interface YamlComment { readonly comment: string }
export type YamlEntry = readonly [key: string, value: YamlValue] | YamlComment;
export interface YamlMap { readonly entries: readonly YamlEntry[] }

export function yamlMap(...entries: (YamlEntry | undefined | false)[]): YamlMap {
  return { entries: entries.filter((e): e is YamlEntry => Boolean(e)) };
}

export function yamlString(s: string): string {
  // JSON strings are valid YAML double-quoted scalars (JSON.stringify never emits "\/").
  return JSON.stringify(s);
}

function key(k: string): string {
  // Schema keys stay plain; registry names and hosts are quoted like the K3s docs do ("*" must be).
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : yamlString(k);
}

function scalar(v: YamlScalar): string {
  return typeof v === 'string' ? yamlString(v) : String(v);
}

function isMap(v: YamlValue): v is YamlMap {
  return typeof v === 'object' && !Array.isArray(v);
}

export function emitYaml(map: YamlMap, indent = 0): string {
  const pad = ' '.repeat(indent);
  let out = '';
  for (const entry of map.entries) {
    if ('comment' in entry) {
      for (const line of entry.comment.split('\n')) out += `${pad}#${line ? ` ${line}` : ''}\n`;
      continue;
    }
    const [k, v] = entry as readonly [string, YamlValue];
    if (isMap(v)) {
      out += v.entries.length === 0 ? `${pad}${key(k)}: {}\n` : `${pad}${key(k)}:\n${emitYaml(v, indent + 2)}`;
    } else if (Array.isArray(v)) {
      out += v.length === 0 ? `${pad}${key(k)}: []\n` : `${pad}${key(k)}:\n${v.map((s) => `${pad}  - ${yamlString(s)}\n`).join('')}`;
    } else {
      out += `${pad}${key(k)}: ${scalar(v as YamlScalar)}\n`;
    }
  }
  return out;
}

/** `# ` comment lines for a file header. */
export function commentBlock(lines: readonly string[]): string {
  return lines.map((l) => (l ? `# ${l}` : '#')).join('\n') + '\n';
}

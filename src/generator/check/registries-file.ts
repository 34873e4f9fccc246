// `ocimirror check FILE`: every finding in a K3s registries.yaml, with its line:col.
import { isMap, isScalar, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import { FindingSink, type Finding } from './findings.js';
import { checkConfigs, type FileCheckOptions } from './configs.js';
import { knownFields } from './keys.js';
import { checkMirrors } from './mirrors.js';

export type { FileCheckOptions };

/** Parses YAML for checking: syntax problems become findings (K3s cannot read such a file at all). */
export function parseForCheck(file: string, text: string): { sink: FindingSink; root: Node | null; ok: boolean } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const sink = new FindingSink(file, lines);
  // An unquoted * starts a YAML alias; the parser's own message points somewhere confusing.
  for (const m of text.matchAll(/^([ \t]*)\*[ \t]*:/gm)) {
    sink.at((m.index ?? 0) + (m[1] as string).length, 'error', 'wildcard-unquoted', 'the wildcard mirror * is not quoted: YAML reads it as an alias and the file does not parse',
      'write "*": with quotes');
  }
  for (const e of doc.errors) {
    const duplicate = e.code === 'DUPLICATE_KEY';
    sink.at(e.pos[0], 'error', duplicate ? 'duplicate-key' : 'yaml-invalid',
      duplicate ? 'this key appears twice in the same mapping; K3s rejects the file' : `not valid YAML: ${e.message.split('\n')[0]}`,
      duplicate ? 'merge the two entries into one' : 'fix the YAML syntax; K3s cannot read this file');
  }
  return { sink, root: (doc.contents as Node | null) ?? null, ok: doc.errors.length === 0 };
}

/** Checks the `mirrors:` and `configs:` nodes (shared by registries.yaml and ocimirror's own config). */
export function checkRegistryNodes(sink: FindingSink, mirrors: Node | null | undefined, configs: Node | null | undefined, opts: FileCheckOptions): void {
  const summary = checkMirrors(sink, mirrors);
  checkConfigs(sink, configs, summary, opts);
}

export function checkRegistriesText(file: string, text: string, opts: FileCheckOptions): Finding[] {
  const { sink, root, ok } = parseForCheck(file, text);
  if (!ok || root == null || (isScalar(root) && root.value == null)) return sink.findings;
  if (!isMap(root)) {
    sink.add(root, 'error', 'wrong-type', 'a registries.yaml must be a mapping with mirrors: and configs:', 'start the file with mirrors: or configs:');
    return sink.findings;
  }
  const f = knownFields(sink, root, 'the top level', ['mirrors', 'configs']);
  const value = (k: string) => (f?.get(k) as Pair<Node, Node | null> | undefined)?.value;
  checkRegistryNodes(sink, value('mirrors'), value('configs'), opts);
  return sink.findings;
}

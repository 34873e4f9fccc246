// What `ocimirror check` reports: findings with a position, a severity and the fix, in text or JSON.
import type { LineCounter, Node } from 'yaml';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly severity: Severity;
  /** Stable identifier, e.g. `auth-token`; CI scripts match on it. */
  readonly code: string;
  readonly message: string;
  readonly fix: string;
}

/** Collects findings for one file, turning YAML AST nodes into line:col. */
export class FindingSink {
  readonly findings: Finding[] = [];
  constructor(readonly file: string, private readonly lines: LineCounter) {}

  add(node: Node | null | undefined, severity: Severity, code: string, message: string, fix: string): void {
    this.at(node?.range?.[0] ?? 0, severity, code, message, fix);
  }

  lineOf(node: Node | null | undefined): number {
    return this.lines.linePos(node?.range?.[0] ?? 0).line;
  }

  at(offset: number, severity: Severity, code: string, message: string, fix: string): void {
    const { line, col } = this.lines.linePos(offset);
    this.findings.push({ file: this.file, line, col, severity, code, message, fix });
  }
}

const RANK: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || RANK[a.severity] - RANK[b.severity]);
}

/** 0 clean (info only), 1 warnings, 2 errors. */
export function exitCode(findings: readonly Finding[]): 0 | 1 | 2 {
  if (findings.some((f) => f.severity === 'error')) return 2;
  return findings.some((f) => f.severity === 'warning') ? 1 : 0;
}

/** `FILE:LINE:COL: severity: message (fix: ...)`, one per line, like compilers print. */
export function formatText(findings: readonly Finding[]): string {
  return sortFindings(findings).map((f) => `${f.file}:${f.line}:${f.col}: ${f.severity}: ${f.message} (fix: ${f.fix})\n`).join('');
}

export function formatJson(findings: readonly Finding[]): string {
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length;
  const summary = { errors: count('error'), warnings: count('warning'), infos: count('info') };
  return `${JSON.stringify({ findings: sortFindings(findings), summary, exitCode: exitCode(findings) }, null, 2)}\n`;
}

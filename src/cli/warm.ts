// Placeholder until the warm command lands; keeps the command table complete.
export async function warmCommand(_argv: string[]): Promise<number> {
  process.stderr.write('ocimirror warm: not implemented yet\n');
  return 2;
}

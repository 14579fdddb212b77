/** `--name N` or `--name=N` from argv as a positive integer; `fallback` when absent. Throws on anything else. */
export function positiveIntFlag(argv: readonly string[], name: string, fallback: number): number {
  const flag = `--${name}`;
  const i = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (i < 0) return fallback;
  const raw = argv[i]!.includes("=") ? argv[i]!.split("=")[1] : argv[i + 1];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer (got ${JSON.stringify(raw ?? "")})`);
  return n;
}

/**
 * One POSIX-shell word: single quotes, each `'` as `'\''`, NUL bytes dropped (no shell can pass them). Inside
 * single quotes nothing is special, so `$(…)`, backticks and quotes reach the program as plain text.
 */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/\0/g, "").replace(/'/g, `'\\''`)}'`;
}


/**
 * Splits a list value such as VM_IGNORED_LIST into words. Plain words are separated by whitespace, as in the
 * seed; a name that contains spaces is written in double or single quotes (`"win 11" nas`), and a backslash
 * escapes the next character. Throws on an unterminated quote so a typo cannot silently change the list.
 */
export function parseWordList(value: string): string[] {
  const words: string[] = [];
  let current = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === "\\" && quote === '"' && i + 1 < value.length) current += value[++i];
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < value.length) {
      current += value[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = "";
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote`);
  if (inWord) words.push(current);
  return words;
}

/** Writes words as one list value that parseWordList reads back exactly (double quotes, `\` escapes). */
export function formatWordList(words: readonly string[]): string {
  return words.map((w) => `"${w.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`).join(" ");
}

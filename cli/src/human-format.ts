/*
 * What the commands' human output shares: colours for a person at a terminal, sizes and durations in words.
 */

/** Colours only when `enabled` (a terminal, and never with NO_COLOR): otherwise each paint returns its text. */
export function painter(enabled: boolean) {
  const code = (n: number) => (text: string) => (enabled ? `\x1b[${n}m${text}\x1b[0m` : text);
  return { red: code(31), green: code(32), yellow: code(33), dim: code(2), bold: code(1) };
}

export type Painter = ReturnType<typeof painter>;

/** Whether stdout gets human output with colours: a terminal, and NO_COLOR unset. */
export function stdoutWantsColour(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

/** 1536 → "1.5 KiB". */
export function size(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** 83_000 → "1 min 23 s"; under a second "0.4 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** An ISO time as "2026-12-07 23:40:01Z". */
export function shortTime(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

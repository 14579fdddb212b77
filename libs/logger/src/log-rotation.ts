import { createReadStream, createWriteStream } from "node:fs";
import { readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

/** The subset of logrotate's directives (LOGROTATE_SETTINGS) that the seed's default stanza uses. */
export interface RotationSettings {
  /** Rotated files kept per log. Default 30. */
  keep: number;
  compress: boolean;
  /** Skip an empty log. */
  notIfEmpty: boolean;
  /** strftime-like suffix, e.g. `.%Y-%m-%d.%H:%M:%S` (logrotate's dateext + dateformat). */
  dateFormat: string;
}

/** Reads a logrotate stanza body; unknown directives are ignored, as they don't change what we do. */
export function parseRotationSettings(text: string): RotationSettings {
  const settings: RotationSettings = { keep: 30, compress: false, notIfEmpty: false, dateFormat: "-%Y%m%d" };
  for (const line of text.split(/\n|;/).map((l) => l.trim())) {
    const [word, ...rest] = line.split(/\s+/);
    if (word === "rotate" && /^\d+$/.test(rest[0] ?? "")) settings.keep = Number(rest[0]);
    else if (word === "compress") settings.compress = true;
    else if (word === "nocompress") settings.compress = false;
    else if (word === "notifempty") settings.notIfEmpty = true;
    else if (word === "ifempty") settings.notIfEmpty = false;
    else if (word === "dateformat" && rest.length > 0) settings.dateFormat = rest.join(" ");
  }
  return settings;
}

function formatDate(format: string, d: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const parts: Record<string, string> = {
    Y: String(d.getFullYear()),
    m: two(d.getMonth() + 1),
    d: two(d.getDate()),
    H: two(d.getHours()),
    M: two(d.getMinutes()),
    S: two(d.getSeconds()),
    s: String(Math.floor(d.getTime() / 1000)),
  };
  return format.replace(/%([YmdHMSs])/g, (_, k: string) => parts[k]!);
}

/**
 * Rotates one log file: renames it with a date suffix (the writer then reopens the path), gzips the rotated
 * copy when asked, and deletes rotated copies beyond `keep`, oldest first. Returns the rotated file, if any.
 */
export async function rotateLogFile(file: string, settings: RotationSettings, reopen: () => void, now = new Date()): Promise<string | undefined> {
  const size = await stat(file).then((s) => s.size, () => undefined);
  if (size === undefined || (settings.notIfEmpty && size === 0)) return undefined;
  const rotated = `${file}${formatDate(settings.dateFormat, now)}`;
  await rename(file, rotated);
  reopen();
  let kept = rotated;
  if (settings.compress) {
    kept = `${rotated}.gz`;
    await pipeline(createReadStream(rotated), createGzip(), createWriteStream(kept));
    await rm(rotated);
  }
  const prefix = basename(file);
  const older = (await readdir(dirname(file)))
    .filter((name) => name.startsWith(prefix) && name !== prefix)
    .sort()
    .reverse();
  for (const name of older.slice(settings.keep)) await rm(join(dirname(file), name), { force: true });
  return kept;
}

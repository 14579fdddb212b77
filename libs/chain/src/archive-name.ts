import { localParts, pad } from "./local-time.js";

/*
 * Archive folder names: `<domain>.<YYYY-MM-DD>+<HH:MM:SS>.<10 digits>`, the layout GNU find's `%T+` prints for
 * the oldest file of the chain (seed-behaviour.md §6). Being fixed-width after the domain, names sort
 * chronologically as plain strings (within one zone and outside a DST fall-back hour).
 */

/** The timestamp part only, anchored at the end. No domain text is ever put into a regular expression. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}\+\d{2}:\d{2}:\d{2}\.\d{10}$/;
/** The same timestamp as the tail of a longer name; used to bump the fraction of a taken name. */
const TIMESTAMP_TAIL = /\.(\d{4}-\d{2}-\d{2}\+\d{2}:\d{2}:\d{2})\.(\d{10})$/;

function assertDomain(domain: string): void {
  // The name becomes a folder next to the active chain: a '/' would move it elsewhere.
  if (domain === "" || domain.includes("/")) throw new RangeError(`invalid domain name for an archive: ${JSON.stringify(domain)}`);
}

/** Floor division for bigint (stat times before 1970 are negative). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/**
 * The archive folder name for a chain whose oldest file has mtime `oldestMtimeMs`, in the local time of
 * `timeZone` (IANA name; default: the process zone).
 *
 * The 10 fractional digits are the sub-second part of the mtime, zero padded on the right. A millisecond
 * mtime only carries 3 real digits; pass `mtimeNs` (from `stat(…, { bigint: true }).mtimeNs`) to get 9, as
 * GNU find does. When given, `mtimeNs` wins and must describe the same instant.
 */
export function archiveFolderName(domain: string, oldestMtimeMs: number, timeZone?: string, mtimeNs?: bigint): string {
  assertDomain(domain);
  let wholeSecondMs: number;
  let fraction: string;
  if (mtimeNs !== undefined) {
    const seconds = floorDiv(mtimeNs, 1_000_000_000n);
    wholeSecondMs = Number(seconds) * 1000;
    fraction = pad(Number(mtimeNs - seconds * 1_000_000_000n), 9) + "0";
  } else {
    if (!Number.isFinite(oldestMtimeMs)) throw new RangeError(`invalid mtime: ${oldestMtimeMs}`);
    wholeSecondMs = Math.floor(oldestMtimeMs / 1000) * 1000;
    fraction = pad(Math.floor(oldestMtimeMs - wholeSecondMs), 3) + "0000000";
  }
  const t = localParts(wholeSecondMs, timeZone);
  const date = `${pad(t.year, 4)}-${pad(t.month, 2)}-${pad(t.day, 2)}`;
  const time = `${pad(t.hour, 2)}:${pad(t.minute, 2)}:${pad(t.second, 2)}`;
  return `${domain}.${date}+${time}.${fraction}`;
}

/** The parts of a folder name that matched the archive pattern of one domain. */
export interface ParsedArchiveName {
  /** `YYYY-MM-DD+HH:MM:SS.NNNNNNNNNN` */
  timestamp: string;
}

/**
 * Parses `folderName` as an archive of exactly `domain`. Returns null for anything else: the active chain
 * folder, other domains' archives (`a.b` never matches `aXb.…`, and `vm` never matches `vm.x.…`), renamed or
 * suffixed (pinned) folders.
 */
export function parseArchiveFolderName(domain: string, folderName: string): ParsedArchiveName | null {
  const prefix = `${domain}.`;
  if (domain === "" || !folderName.startsWith(prefix)) return null;
  const timestamp = folderName.slice(prefix.length);
  return TIMESTAMP.test(timestamp) ? { timestamp } : null;
}

/** The domain an archive folder name belongs to (`vm1.2024-01-01+00:00:00.0000000000` → `vm1`), or null for any other name. */
export function archiveDomainOf(folderName: string): string | null {
  const tail = TIMESTAMP_TAIL.exec(folderName);
  if (!tail) return null;
  const domain = folderName.slice(0, tail.index);
  return parseArchiveFolderName(domain, folderName) ? domain : null;
}

/**
 * Returns `name`, or a free variant of it when `existing` already holds it (the seed moved the chain *inside*
 * the existing folder instead).
 *
 * Strategy: for a name in the archive pattern, the 10-digit fraction is bumped by 1, 2, … until free. The
 * changed digits lie below the precision of the source mtime (a ms mtime fills only 3 digits, find's ns
 * format always ends in 0), so the name still tells the chain's start time, still sorts next to its twin,
 * and — unlike a `-2` suffix — still matches the retention pattern, so it is rotated like any other archive
 * instead of silently becoming pinned and filling the disk. Names outside the pattern get `-2`, `-3`, …
 */
export function uniqueArchiveName(name: string, existing: ReadonlySet<string>): string {
  if (!existing.has(name)) return name;
  const tail = TIMESTAMP_TAIL.exec(name);
  if (tail && tail[1] !== undefined && tail[2] !== undefined) {
    const head = name.slice(0, tail.index);
    for (let f = Number(tail[2]) + 1; f <= 9_999_999_999; f++) {
      const candidate = `${head}.${tail[1]}.${pad(f, 10)}`;
      if (!existing.has(candidate)) return candidate;
    }
  }
  for (let n = 2; ; n++) {
    const candidate = `${name}-${n}`;
    if (!existing.has(candidate)) return candidate;
  }
}

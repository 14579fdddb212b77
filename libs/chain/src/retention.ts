import { parseArchiveFolderName } from "./archive-name.js";
import { isoDate, localParts } from "./local-time.js";

/**
 * Count-based retention (seed-behaviour.md §6): among the folders in `folderNames` that are archives of
 * exactly `domain`, keep the newest `keep` and return the others, newest first.
 *
 * `keep` 0 means "keep all" and returns nothing. Folders outside the exact pattern — the active chain
 * folder `<domain>`, renamed or suffixed (pinned) folders, other domains' archives — are never returned.
 */
export function selectArchivesToDelete(domain: string, folderNames: readonly string[], keep: number): string[] {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep must be a whole number >= 0, got ${keep}`);
  if (keep === 0) return [];
  const archives = [...new Set(folderNames)].filter((n) => parseArchiveFolderName(domain, n) !== null);
  // Same domain prefix and fixed-width timestamps: descending string order is newest first.
  archives.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  return archives.slice(keep);
}

/** One archived chain and the times of its restore points (checkpoint creation times, epoch ms). */
export interface ChainPoints {
  name: string;
  points: readonly number[];
}

/**
 * Calendar retention tiers. Each number counts periods back from `now`, the current one included;
 * 0 disables the tier. Example: `{ days: 7, weeks: 4, months: 6 }`.
 */
export interface CalendarPolicy {
  days: number;
  weeks: number;
  months: number;
}

/**
 * Opt-in calendar retention: which archived chains to keep.
 *
 * For each of the last `days` local days, `weeks` ISO weeks (Monday first) and `months` months, the newest
 * restore point in that period is wanted; a chain is kept whole when it holds any wanted point, because an
 * incremental point needs every earlier point of its chain. Points after `now` (clock skew) always keep their
 * chain: we cannot place them, and deleting on a guess is not an option. The active chain is not an input.
 *
 * Returns the kept names in input order. A policy with every tier at 0 is rejected: it would delete every
 * archive, and "no calendar retention" must be expressed by not calling this at all.
 */
export function selectCalendarRetention(
  chains: readonly ChainPoints[],
  policy: CalendarPolicy,
  now: number,
  timeZone?: string,
): string[] {
  for (const [tier, n] of Object.entries(policy)) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`${tier} must be a whole number >= 0, got ${n}`);
  }
  if (policy.days + policy.weeks + policy.months === 0) throw new RangeError("calendar policy keeps nothing");

  const today = localParts(now, timeZone);
  const wanted = new Set<string>();
  for (let i = 0; i < policy.days; i++) wanted.add(`d:${isoDate(today.year, today.month, today.day - i)}`);
  const monday = today.day - mondayOffset(today.year, today.month, today.day);
  for (let i = 0; i < policy.weeks; i++) wanted.add(`w:${isoDate(today.year, today.month, monday - 7 * i)}`);
  for (let i = 0; i < policy.months; i++) wanted.add(`m:${isoDate(today.year, today.month - i, 1)}`);

  const keep = new Set<string>();
  const newestPerBucket = new Map<string, { time: number; chain: string }>();
  for (const chain of chains) {
    for (const time of chain.points) {
      if (time > now) {
        keep.add(chain.name);
        continue;
      }
      for (const bucket of bucketsOf(time, timeZone)) {
        if (!wanted.has(bucket)) continue;
        const best = newestPerBucket.get(bucket);
        if (!best || time > best.time) newestPerBucket.set(bucket, { time, chain: chain.name });
      }
    }
  }
  for (const { chain } of newestPerBucket.values()) keep.add(chain);
  return chains.map((c) => c.name).filter((name, i, all) => keep.has(name) && all.indexOf(name) === i);
}

/** Days since the Monday of the week holding the given date. */
function mondayOffset(year: number, month: number, day: number): number {
  return (new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7;
}

/** Day, week and month bucket keys of an instant, in the same key format as the wanted set. */
function bucketsOf(time: number, timeZone: string | undefined): string[] {
  const t = localParts(time, timeZone);
  return [
    `d:${isoDate(t.year, t.month, t.day)}`,
    `w:${isoDate(t.year, t.month, t.day - mondayOffset(t.year, t.month, t.day))}`,
    `m:${isoDate(t.year, t.month, 1)}`,
  ];
}

import { parseArchiveFolderName } from "./archive-name.js";
import { selectArchivesToDelete, selectCalendarRetention, type CalendarPolicy, type ChainPoints } from "./retention.js";

/** Inputs of {@link decideRetention}. Facts only; reading them is the caller's job. */
export interface RetentionInput {
  domain: string;
  /** Every folder name in the backup root (the active chain, other domains and pinned folders included). */
  folderNames: readonly string[];
  /**
   * Folders that are some domain's active chain: every libvirt domain name of this host, and every folder `X`
   * holding `X.cpt`. Never candidates, whatever their name looks like (a domain may be called
   * `web.2026-01-01+00:00:00.0123456789`, which reads as an archive of `web`).
   */
  activeChains: readonly string[];
  /** Archived chains kept by count; 0 keeps all (seed semantics). */
  keep: number;
  /** Opt-in calendar tiers (see {@link calendarPolicyOf}); undefined = count only. */
  calendar?: CalendarPolicy;
  /** Restore points of the archives; needed only with `calendar`. An archive missing here has no points. */
  chains?: readonly ChainPoints[];
  now: number;
  timeZone?: string;
  /** The setting `keep` came from, for the reasons. Default "LOCAL_BACKUP_CHAINS_TO_KEEP". */
  keepSetting?: string;
}

/** One archive and why it goes or stays. */
export interface RetentionVerdict {
  name: string;
  reason: string;
}

/** Archives newest first, split into kept and to-delete, each with a readable reason. */
export interface RetentionDecision {
  archives: string[];
  keep: RetentionVerdict[];
  delete: RetentionVerdict[];
}

/**
 * The calendar policy from LOCAL_RETENTION_DAYS/WEEKS/MONTHS, or undefined when all are 0 (off): a policy
 * with every tier at 0 would keep nothing, which is never what "off" means.
 */
export function calendarPolicyOf(days: number, weeks: number, months: number): CalendarPolicy | undefined {
  return days + weeks + months > 0 ? { days, weeks, months } : undefined;
}

function describeCalendar(c: CalendarPolicy): string {
  return `days=${c.days}, weeks=${c.weeks}, months=${c.months}`;
}

/**
 * Local retention, pure. Count-based as in the seed (keep the newest `keep` archives of exactly `domain`);
 * with a calendar policy the kept set is the UNION of the count-kept and calendar-kept archives, so turning
 * calendar retention on can only keep more, never delete a chain the count rule would keep. `keep` 0 keeps
 * everything, calendar or not (to let the calendar tiers decide, set the count to 1, a floor of one chain).
 * Folders outside the exact archive pattern (the active chain, pinned or other domains' folders) and every
 * active chain in `activeChains` are never candidates.
 */
export function decideRetention(i: RetentionInput): RetentionDecision {
  const setting = i.keepSetting ?? "LOCAL_BACKUP_CHAINS_TO_KEEP";
  const active = new Set([i.domain, ...i.activeChains]);
  const archives = [...new Set(i.folderNames)].filter((n) => !active.has(n) && parseArchiveFolderName(i.domain, n) !== null);
  archives.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  if (i.keep === 0) {
    const reason = `${setting}=0 keeps every archived chain`;
    return { archives, keep: archives.map((name) => ({ name, reason })), delete: [] };
  }

  const byCount = new Set(selectArchivesToDelete(i.domain, archives, i.keep));
  const byCalendar = i.calendar
    ? new Set(selectCalendarRetention(i.chains?.filter((c) => archives.includes(c.name)) ?? [], i.calendar, i.now, i.timeZone))
    : new Set<string>();
  const countKept = archives.filter((n) => !byCount.has(n));
  const calendarText = i.calendar ? ` and holds no restore point wanted by calendar retention (${describeCalendar(i.calendar)})` : "";

  const decision: RetentionDecision = { archives, keep: [], delete: [] };
  for (const name of archives) {
    if (!byCount.has(name)) {
      decision.keep.push({ name, reason: `one of the newest ${i.keep} archived chains of ${i.domain} (${setting}=${i.keep})` });
    } else if (byCalendar.has(name)) {
      decision.keep.push({ name, reason: `holds the newest restore point of a period wanted by calendar retention (${describeCalendar(i.calendar!)})` });
    } else {
      const kept = countKept.length > 0 ? countKept.join(", ") : "none";
      decision.delete.push({
        name,
        reason: `${setting}=${i.keep}: older than the ${countKept.length} newest archived chain(s) of ${i.domain} kept by count (${kept})${calendarText}`,
      });
    }
  }
  return decision;
}

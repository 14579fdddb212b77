import { createTask } from "node-cron";

/** What the status service judges the fleet by. */
export interface FleetPolicy {
  /** BACKUP_RPO_MINUTES in seconds: a scheduled domain's last good backup may be at most this old. */
  rpoSeconds: number;
  /** Whether overdue domains raise `stale` alarms (NOTIFY_STALE_HOURS=0 turns them off); the verdict stays. */
  staleAlarms?: boolean;
  /** A host is silent when its last heartbeat is older than this (agents beat every 30 s). Default 65 s. */
  silentAfterMs: number;
  /** The next BACKUP_SCHEDULE slot from now on, if there is a schedule. */
  nextRun(): Date | null;
}

/** Two missed heartbeats (every 30 s) and a little slack: a stopped agent is seen within 75 s with a 10 s poll. */
export const SILENT_AFTER_MS = 65_000;

/** "3 h 20 min", "2 d 4 h", "45 s": an age a person reads. */
export function describeAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** The first age (ms) from `ms` on at which `describeAge` reads differently: when its last shown unit ticks. */
export function describeAgeChangesAt(ms: number): number {
  const s = Math.max(0, Math.round(ms / 1000));
  // Seconds under a minute, minutes under 48 h, hours beyond (see describeAge).
  const step = s < 60 ? 1 : s < 48 * 3600 ? 60 : 3600;
  // describeAge rounds to the second: the next step shows from half a second before it.
  return ((Math.floor(s / step) + 1) * step - 0.5) * 1000;
}

/** The policy of a BACKUP_SCHEDULE (read in `timeZone`) and an RPO. */
export function createFleetPolicy(o: { schedule?: string; timeZone?: string; rpoMinutes: number; staleAlarms?: boolean; silentAfterMs?: number }): FleetPolicy {
  // A task never started (it runs nothing), asked only for its next slot.
  const task = o.schedule ? createTask(o.schedule, () => {}, o.timeZone ? { timezone: o.timeZone } : {}) : undefined;
  return {
    rpoSeconds: o.rpoMinutes * 60,
    staleAlarms: o.staleAlarms ?? true,
    silentAfterMs: o.silentAfterMs ?? SILENT_AFTER_MS,
    nextRun: () => task?.getNextRuns(1)[0] ?? null,
  };
}

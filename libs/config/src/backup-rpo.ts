import type { Config } from "./config-schema.js";

/** The RPO when neither BACKUP_RPO_MINUTES nor NOTIFY_STALE_HOURS is set: a daily schedule with two hours to spare. */
export const DEFAULT_RPO_MINUTES = 1560;

/**
 * The RPO in effect — BACKUP_RPO_MINUTES, else NOTIFY_STALE_HOURS (its former name, in hours), else 26 h — and
 * whether overdue domains raise `stale` alarms (NOTIFY_STALE_HOURS=0 turned them off, and still does).
 */
export function backupRpo(config: Pick<Config, "BACKUP_RPO_MINUTES" | "NOTIFY_STALE_HOURS">): { minutes: number; staleAlarms: boolean } {
  if (config.BACKUP_RPO_MINUTES !== undefined) return { minutes: config.BACKUP_RPO_MINUTES, staleAlarms: true };
  if (config.NOTIFY_STALE_HOURS === undefined) return { minutes: DEFAULT_RPO_MINUTES, staleAlarms: true };
  if (config.NOTIFY_STALE_HOURS === 0) return { minutes: DEFAULT_RPO_MINUTES, staleAlarms: false };
  return { minutes: config.NOTIFY_STALE_HOURS * 60, staleAlarms: true };
}

import { createTask, type ScheduledTask } from "node-cron";
import { matchingEntry, NO_DOMAIN_POLICIES, type DomainPolicies, type PolicyEntry } from "@vmbs/config";

/** The next slot of each domain's schedule, as of one reply. */
export interface NextRuns {
  of(domain: string): Date | null;
  /** Changes whenever any answer of `of` may: a slot passed or the policy file changed (a cached view keys on it). */
  key: string;
}

/** What the status service judges the fleet by. */
export interface FleetPolicy {
  /** A domain's RPO in seconds (its VMBS_POLICY_FILE entry, else BACKUP_RPO_MINUTES): its last good backup may be at most this old. */
  rpoSecondsOf(domain: string): number;
  /** Whether overdue domains raise `stale` alarms (NOTIFY_STALE_HOURS=0 turns them off); the verdict stays. */
  staleAlarms?: boolean;
  /** A host is silent when its last heartbeat is older than this (agents beat every 30 s). Default 65 s. */
  silentAfterMs: number;
  /** The next slot of every schedule in use, asked once per reply (node-cron takes ~30 µs per question). */
  nextRuns(): NextRuns;
}

/** A policy whose RPO and next slot are the same for every domain (tests, and a fleet without a policy file). */
export function uniformFleetPolicy(o: { rpoSeconds: number; silentAfterMs: number; nextRun: () => Date | null; staleAlarms?: boolean }): FleetPolicy {
  return {
    rpoSecondsOf: () => o.rpoSeconds,
    silentAfterMs: o.silentAfterMs,
    ...(o.staleAlarms !== undefined ? { staleAlarms: o.staleAlarms } : {}),
    nextRuns: () => {
      const next = o.nextRun();
      return { of: () => next, key: next?.toISOString() ?? "none" };
    },
  };
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

export interface FleetPolicyOptions {
  /** BACKUP_SCHEDULE, read in `timeZone`. */
  schedule?: string;
  timeZone?: string;
  /** BACKUP_RPO_MINUTES (see backupRpo). */
  rpoMinutes: number;
  staleAlarms?: boolean;
  silentAfterMs?: number;
  /** The per-domain policies in effect (VMBS_POLICY_FILE): a domain's entry may set its own schedule and RPO. */
  policies?: { current(): DomainPolicies };
}

/** The policy of the schedules (BACKUP_SCHEDULE and the policy file's) and the RPOs. */
export function createFleetPolicy(o: FleetPolicyOptions): FleetPolicy {
  const policies = o.policies ?? { current: () => NO_DOMAIN_POLICIES };
  // Tasks never started (they run nothing), asked only for their next slot.
  const tasks = new Map<string, ScheduledTask>();
  const taskOf = (expression: string) => {
    let task = tasks.get(expression);
    if (!task) tasks.set(expression, (task = createTask(expression, () => {}, o.timeZone ? { timezone: o.timeZone } : {})));
    return task;
  };
  // The entry of each domain, per version of the file: a glob is matched once per domain, not per reply.
  let matchedIn: DomainPolicies | undefined;
  let generation = 0;
  const matched = new Map<string, PolicyEntry | undefined>();
  /** Starts a new generation (and forgets the matches) when the file in effect changed. */
  const followFile = (): DomainPolicies => {
    const current = policies.current();
    if (current !== matchedIn) {
      matchedIn = current;
      generation += 1;
      matched.clear();
    }
    return current;
  };
  const entryOf = (domain: string): PolicyEntry | undefined => {
    const current = followFile();
    if (!matched.has(domain)) matched.set(domain, matchingEntry(current, domain));
    return matched.get(domain);
  };
  return {
    rpoSecondsOf: (domain) => (entryOf(domain)?.rpoMinutes ?? o.rpoMinutes) * 60,
    staleAlarms: o.staleAlarms ?? true,
    silentAfterMs: o.silentAfterMs ?? SILENT_AFTER_MS,
    nextRuns() {
      const expressions = [...new Set([o.schedule ?? "", ...followFile().domains.map((e) => e.schedule ?? "")])].filter(Boolean);
      const next = new Map(expressions.map((e) => [e, taskOf(e).getNextRuns(1)[0] ?? null]));
      return {
        of: (domain) => next.get(entryOf(domain)?.schedule ?? o.schedule ?? "") ?? null,
        key: `${generation} ${[...next.values()].map((d) => d?.toISOString()).join(" ")}`,
      };
    },
  };
}

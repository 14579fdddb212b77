import { backupEventSchema, chainEventSchema, subjects, type BackupLevel } from "@vmbs/contracts";
import type { OutboxEvent } from "@vmbs/bus";

/*
 * What a command whose earlier delivery was interrupted (killed agent, crashed handler) does again, decided
 * from the events that delivery announced (CommandRun.interrupted). A `check` or `retention` command simply
 * runs again: both decide from the chain as it is now, so a repeat removes nothing a first run would not.
 */

/** What a redelivered backup command does for one domain. */
export type ResumeDecision = { kind: "skip"; reason: string } | { kind: "run"; level: BackupLevel; reason?: string };

/**
 * The rule for a backup command whose earlier delivery was interrupted (`interrupted`: the events that run
 * announced, see CommandRun). Pure, from the recorded events only:
 * - the domain's outcome (`completed` or `failed`) was announced: skip it — it is re-announced, not redone;
 * - a `full` that had already archived the chain (the runner's `archived` event, trigger `backup`) runs as
 *   `auto`: with no chain left (the full did not finish) that is a full; if the full did finish but its
 *   `completed` was never recorded, it is an incremental on the new chain — never a second archive of it;
 * - anything else runs as requested: the normal path (the chain check repairs what the interrupted run left,
 *   then the backup) is safe to repeat.
 */
export function resumeBackup(host: string, interrupted: readonly OutboxEvent[] | undefined, domain: string, requested: BackupLevel): ResumeDecision {
  if (!interrupted) return { kind: "run", level: requested };
  const outcomeSubjects = new Set([subjects.evt.backup(host, "completed"), subjects.evt.backup(host, "failed")]);
  const announced = interrupted.some((e) => outcomeSubjects.has(e.subject) && backupEventSchema.safeParse(e.payload).data?.domain === domain);
  if (announced) return { kind: "skip", reason: `the interrupted run already announced the outcome of ${domain}` };
  if (requested === "full" && announcedArchive(host, interrupted, domain, "backup"))
    return { kind: "run", level: "auto", reason: "the interrupted full had archived the previous chain already: continuing as auto, never archiving again" };
  return { kind: "run", level: requested };
}

/**
 * A forced rotation (`rotate` command) that had archived the chain already is not repeated: a second one would
 * archive whatever chain was started since (e.g. by the start-up check) and leave the domain without one.
 */
export function rotationDone(host: string, interrupted: readonly OutboxEvent[] | undefined, domain: string): boolean {
  return interrupted !== undefined && announcedArchive(host, interrupted, domain, "command");
}

/** The interrupted run announced that it archived `domain`'s chain, as the step with this trigger. */
function announcedArchive(host: string, events: readonly OutboxEvent[], domain: string, trigger: string): boolean {
  return events.some((e) => {
    if (e.subject !== subjects.evt.chain(host, "archived")) return false;
    const event = chainEventSchema.safeParse(e.payload).data;
    return event?.domain === domain && event.trigger === trigger;
  });
}

import { schedule, type ScheduledTask } from "node-cron";
import type { NatsConnection } from "@vmbs/bus";
import { matchingEntry, noPolicySource, type PolicySource } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { createSlotPublisher } from "./slot-publisher.js";

export interface SchedulerDeps {
  nc: NatsConnection;
  /** BACKUP_SCHEDULE: cron expression or macro such as @daily; a domain's policy entry may give its own. */
  schedule: string;
  /** The process's VMBS_POLICY_FILE, kept current (serve.ts opens one for all its services): per-domain schedules. */
  policies?: PolicySource;
  /** DRILL_SCHEDULE: a restore drill of every registered host at each slot; unset = no drills. */
  drillSchedule?: string;
  /** TZ: the zone the cron expression is read in; default the machine's. */
  timeZone?: string;
  logger: Logger;
}

export interface SchedulerHandle {
  stop(): Promise<void>;
}

/**
 * Publishes a backup command for every scheduled domain of every registered host at each slot of its schedule
 * (its policy entry's, else BACKUP_SCHEDULE), and a drill command for every registered host at each
 * DRILL_SCHEDULE slot (see slot-publisher.ts).
 */
export async function startScheduler(deps: SchedulerDeps): Promise<SchedulerHandle> {
  const logger = deps.logger.child({ service: "scheduler" });
  const slots = createSlotPublisher({ nc: deps.nc, logger });
  // One cron task per distinct schedule in use; each slot publishes the domains whose schedule it is.
  const tasks = new Map<string, ScheduledTask>();
  const policies = deps.policies ?? noPolicySource;
  const reschedule = () => {
    const wanted = new Set([deps.schedule, ...policies.current().domains.flatMap((e) => (e.schedule ? [e.schedule] : []))]);
    for (const [expression, task] of tasks) {
      if (wanted.has(expression)) continue;
      void task.destroy();
      tasks.delete(expression);
    }
    for (const expression of wanted) {
      if (tasks.has(expression)) continue;
      const task = schedule(
        expression,
        async (ctx) => {
          await slots.fireSlot(ctx.date, (domain) => scheduleOf(domain) === expression).catch((err: unknown) => logger.error({ err }, "publishing scheduled backups failed"));
        },
        { timezone: deps.timeZone, name: `backup-schedule ${expression}`, noOverlap: true, logger: cronLogger(logger) },
      );
      tasks.set(expression, task);
      logger.info({ schedule: expression, timeZone: deps.timeZone, next: task.getNextRun()?.toISOString() }, "backup schedule started");
    }
  };
  const unsubscribe = policies.onChange(reschedule);
  const scheduleOf = (domain: string) => matchingEntry(policies.current(), domain)?.schedule ?? deps.schedule;
  reschedule();
  let drillTask: ScheduledTask | undefined;
  if (deps.drillSchedule) {
    drillTask = schedule(
      deps.drillSchedule,
      async (ctx) => {
        await slots.fireDrillSlot(ctx.date).catch((err: unknown) => logger.error({ err }, "publishing scheduled drills failed"));
      },
      { timezone: deps.timeZone, name: "drill-schedule", noOverlap: true, logger: cronLogger(logger) },
    );
    logger.info({ drillSchedule: deps.drillSchedule, next: drillTask.getNextRun()?.toISOString() }, "drill schedule started");
  }
  return {
    async stop(): Promise<void> {
      unsubscribe();
      await Promise.all([...tasks.values()].map((t) => t.destroy()));
      await drillTask?.destroy();
    },
  };
}

/** node-cron prints coloured console lines by default; route them into pino instead. */
function cronLogger(logger: Logger) {
  return {
    info: (m: string) => logger.debug(m),
    warn: (m: string) => logger.warn(m),
    error: (m: string | Error, err?: Error) => logger.error({ err: err ?? m }, "cron error"),
    debug: (m: string | Error) => logger.debug({ msg: String(m) }),
  };
}

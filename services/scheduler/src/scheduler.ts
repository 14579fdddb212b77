import { schedule, type ScheduledTask } from "node-cron";
import type { NatsConnection } from "@vmbs/bus";
import type { Logger } from "@vmbs/logger";
import { createSlotPublisher } from "./slot-publisher.js";

export interface SchedulerDeps {
  nc: NatsConnection;
  /** BACKUP_SCHEDULE: cron expression or macro such as @daily. */
  schedule: string;
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
 * Publishes a backup command for every scheduled domain of every registered host at each BACKUP_SCHEDULE slot,
 * and a drill command for every registered host at each DRILL_SCHEDULE slot (see slot-publisher.ts).
 */
export async function startScheduler(deps: SchedulerDeps): Promise<SchedulerHandle> {
  const logger = deps.logger.child({ service: "scheduler" });
  const slots = createSlotPublisher({ nc: deps.nc, logger });
  const task: ScheduledTask = schedule(
    deps.schedule,
    async (ctx) => {
      await slots.fireSlot(ctx.date).catch((err: unknown) => logger.error({ err }, "publishing scheduled backups failed"));
    },
    { timezone: deps.timeZone, name: "backup-schedule", noOverlap: true, logger: cronLogger(logger) },
  );
  logger.info({ schedule: deps.schedule, timeZone: deps.timeZone, next: task.getNextRun()?.toISOString() }, "scheduler started");
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
      await task.destroy();
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

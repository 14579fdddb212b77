import { schedule, type ScheduledTask } from "node-cron";
import { subjects, type BackupCommand, type DrillCommand, type HostInventory } from "@vmbs/contracts";
import { publishJson, readHostInventories, type NatsConnection } from "@vmbs/bus";
import type { Logger } from "@vmbs/logger";
import { drillSlotMessageId, slotMessageId } from "./slot-message-id.js";

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

export interface SlotResult {
  /** Commands stored for this slot. */
  published: number;
  /** Commands another replica had already stored for this slot. */
  duplicates: number;
  /** Host entries that could not be read and commands that could not be published (each one is logged). */
  failed: number;
}

/**
 * Publishes a backup command for every scheduled domain of every registered host at each BACKUP_SCHEDULE slot,
 * and a drill command (`vmbs.cmd.drill.<host>`, every chain) for every registered host at each DRILL_SCHEDULE slot.
 */
export function createScheduler(deps: SchedulerDeps) {
  const logger = deps.logger.child({ service: "scheduler" });
  let task: ScheduledTask | undefined;
  let drillTask: ScheduledTask | undefined;

  /**
   * The hosts' inventories. An entry that cannot be parsed is logged and counted, never fatal: one broken host
   * must not cost every other host its slot. The key is the host (an agent may write only its own): a value naming
   * another host is refused, or any agent could schedule backups on every other.
   */
  async function registeredHosts(result: SlotResult): Promise<HostInventory[]> {
    const { inventories, refused } = await readHostInventories(deps.nc);
    for (const { key, reason } of refused) {
      result.failed++;
      logger.warn({ key, reason }, "ignoring a malformed host entry");
    }
    return inventories;
  }

  /** Publishes one command of a slot and counts it in `result`: stored, a duplicate of another replica's, or failed. */
  async function publishCounted(result: SlotResult, what: "backup" | "drill", subject: string, command: BackupCommand | DrillCommand, msgId: string, context: Record<string, unknown>): Promise<void> {
    try {
      const ack = await publishJson(deps.nc, subject, command, msgId);
      if (ack.duplicate) result.duplicates++;
      else result.published++;
    } catch (err) {
      result.failed++;
      logger.error({ err, ...context }, `could not publish a scheduled ${what}`);
    }
  }

  function logSlot(slot: Date, result: SlotResult, msg: string): SlotResult {
    const log = result.failed > 0 ? logger.warn.bind(logger) : logger.info.bind(logger);
    log({ slot: slot.toISOString(), ...result }, msg);
    return result;
  }

  /** Publishes the commands of one slot; safe to call from several replicas for the same slot. */
  async function fireSlot(slot: Date): Promise<SlotResult> {
    const result: SlotResult = { published: 0, duplicates: 0, failed: 0 };
    for (const inventory of await registeredHosts(result)) {
      for (const domain of inventory.domains.filter((d) => d.scheduled)) {
        const command: BackupCommand = { domain: domain.name, level: "auto", requestId: `schedule:${slot.toISOString()}` };
        await publishCounted(result, "backup", subjects.cmd.backup(inventory.host), command, slotMessageId(inventory.host, domain.name, slot), {
          host: inventory.host,
          domain: domain.name,
          slot: slot.toISOString(),
        });
      }
    }
    return logSlot(slot, result, "scheduled backups published");
  }

  /** Publishes the drill commands of one DRILL_SCHEDULE slot; safe to call from several replicas for the same slot. */
  async function fireDrillSlot(slot: Date): Promise<SlotResult> {
    const result: SlotResult = { published: 0, duplicates: 0, failed: 0 };
    for (const inventory of await registeredHosts(result)) {
      const command: DrillCommand = { requestId: `drill-schedule:${slot.toISOString()}` };
      await publishCounted(result, "drill", subjects.cmd.drill(inventory.host), command, drillSlotMessageId(inventory.host, slot), { host: inventory.host, slot: slot.toISOString() });
    }
    return logSlot(slot, result, "scheduled drills published");
  }

  return {
    fireSlot,
    fireDrillSlot,
    start(): void {
      task = schedule(
        deps.schedule,
        async (ctx) => {
          await fireSlot(ctx.date).catch((err: unknown) => logger.error({ err }, "publishing scheduled backups failed"));
        },
        { timezone: deps.timeZone, name: "backup-schedule", noOverlap: true, logger: cronLogger(logger) },
      );
      logger.info({ schedule: deps.schedule, timeZone: deps.timeZone, next: task.getNextRun()?.toISOString() }, "scheduler started");
      if (deps.drillSchedule) {
        drillTask = schedule(
          deps.drillSchedule,
          async (ctx) => {
            await fireDrillSlot(ctx.date).catch((err: unknown) => logger.error({ err }, "publishing scheduled drills failed"));
          },
          { timezone: deps.timeZone, name: "drill-schedule", noOverlap: true, logger: cronLogger(logger) },
        );
        logger.info({ drillSchedule: deps.drillSchedule, next: drillTask.getNextRun()?.toISOString() }, "drill schedule started");
      }
    },
    async stop(): Promise<void> {
      await task?.destroy();
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

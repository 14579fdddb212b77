import { subjects, type BackupCommand, type DrillCommand, type HostInventory } from "@vmbs/contracts";
import { publishJson, readHostInventories, type NatsConnection } from "@vmbs/bus";
import type { Logger } from "@vmbs/logger";
import { drillSlotMessageId, slotMessageId } from "./slot-message-id.js";

export interface SlotPublisherDeps {
  nc: NatsConnection;
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

export interface SlotPublisher {
  /**
   * Publishes the backup commands of one slot for the domains `due` accepts (default all); safe to call from
   * several replicas for the same slot.
   */
  fireSlot(slot: Date, due?: (domain: string) => boolean): Promise<SlotResult>;
  /** Publishes the drill commands of one DRILL_SCHEDULE slot; safe to call from several replicas for the same slot. */
  fireDrillSlot(slot: Date): Promise<SlotResult>;
}

/**
 * The commands of a slot: a backup command for every scheduled domain of every registered host, or a drill
 * command (`vmbs.cmd.drill.<host>`, every chain) for every registered host. Each carries a message id derived
 * from the slot, so replicas firing the same slot store it once.
 */
export function createSlotPublisher(deps: SlotPublisherDeps): SlotPublisher {
  const { logger } = deps;

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

  async function fireSlot(slot: Date, due: (domain: string) => boolean = () => true): Promise<SlotResult> {
    const result: SlotResult = { published: 0, duplicates: 0, failed: 0 };
    for (const inventory of await registeredHosts(result)) {
      for (const domain of inventory.domains.filter((d) => d.scheduled && due(d.name))) {
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

  async function fireDrillSlot(slot: Date): Promise<SlotResult> {
    const result: SlotResult = { published: 0, duplicates: 0, failed: 0 };
    for (const inventory of await registeredHosts(result)) {
      const command: DrillCommand = { requestId: `drill-schedule:${slot.toISOString()}` };
      await publishCounted(result, "drill", subjects.cmd.drill(inventory.host), command, drillSlotMessageId(inventory.host, slot), { host: inventory.host, slot: slot.toISOString() });
    }
    return logSlot(slot, result, "scheduled drills published");
  }

  return { fireSlot, fireDrillSlot };
}

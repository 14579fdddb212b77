import { createHash } from "node:crypto";

/**
 * The Nats-Msg-Id of a scheduled backup command: the same (host, domain, slot) gives the same id on every
 * scheduler replica, so JetStream stores the command once. The domain is hashed because ids travel in a
 * header line and names may hold any character.
 */
export function slotMessageId(host: string, domain: string, slot: Date): string {
  const domainHash = createHash("sha256").update(domain).digest("hex").slice(0, 16);
  return `backup:${host}:${domainHash}:${slotSecond(slot)}`;
}

/** The Nats-Msg-Id of a scheduled drill of one host (DRILL_SCHEDULE): one per (host, slot), whichever replica publishes it. */
export function drillSlotMessageId(host: string, slot: Date): string {
  return `drill:${host}:${slotSecond(slot)}`;
}

function slotSecond(slot: Date): string {
  return new Date(Math.floor(slot.getTime() / 1000) * 1000).toISOString();
}

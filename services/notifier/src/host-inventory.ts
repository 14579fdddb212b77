import type { KV } from "@vmbs/bus";
import { parseHostEntry, type HostInventory } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";

/**
 * The inventory under `key` in the hosts bucket; undefined when there is none or it is refused (logged): not
 * what the contract says, or naming another host than its key. An agent may write only its own key, so the key
 * is the host; trusting the value's host would let one agent stand in for another and hide its alarms.
 */
export async function readHostInventory(kv: KV, key: string, logger: Logger): Promise<HostInventory | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.operation !== "PUT") return undefined;
  const parsed = parseHostEntry(key, entry.value);
  if (!parsed.ok) {
    logger.warn({ key, reason: parsed.reason }, "ignoring a host entry");
    return undefined;
  }
  return parsed.value;
}

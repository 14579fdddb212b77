import type { NatsConnection } from "@nats-io/transport-node";
import { buckets, parseHostEntry, type HostInventory } from "@vmbs/contracts";
import { readBucket } from "./kv-buckets.js";

/** An entry of the hosts bucket that was not taken, and why. */
export interface RefusedHostEntry {
  key: string;
  reason: string;
}

/** Every registered host's inventory, and the entries refused (see `parseHostEntry`: a key vouches for its host only). */
export async function readHostInventories(nc: NatsConnection): Promise<{ inventories: HostInventory[]; refused: RefusedHostEntry[] }> {
  const inventories: HostInventory[] = [];
  const refused: RefusedHostEntry[] = [];
  for (const entry of await readBucket(nc, buckets.hosts)) {
    const parsed = parseHostEntry(entry.key, entry.value);
    if (parsed.ok) inventories.push(parsed.value);
    else refused.push({ key: entry.key, reason: parsed.reason });
  }
  return { inventories, refused };
}

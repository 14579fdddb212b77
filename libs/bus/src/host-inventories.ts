import type { NatsConnection } from "@nats-io/transport-node";
import { buckets, parseHostEntry, type HostInventory, type ParseResult } from "@vmbs/contracts";
import { openBucket, readBucketChanges } from "./kv-buckets.js";

/** An entry of the hosts bucket that was not taken, and why. */
export interface RefusedHostEntry {
  key: string;
  reason: string;
}

/**
 * Every registered host's inventory, and the entries refused (see `parseHostEntry`: a key vouches for its host only).
 * With `after` (a `lastRevision` it returned before), only the heartbeats written since.
 */
export async function readHostInventories(nc: NatsConnection, after = 0): Promise<{ inventories: HostInventory[]; refused: RefusedHostEntry[]; lastRevision: number }> {
  const inventories: HostInventory[] = [];
  const refused: RefusedHostEntry[] = [];
  const { entries, lastRevision } = await readBucketChanges(nc, buckets.hosts, after);
  for (const entry of entries) {
    const parsed = parseHostEntry(entry.key, entry.value);
    if (parsed.ok) inventories.push(parsed.value);
    else refused.push({ key: entry.key, reason: parsed.reason });
  }
  return { inventories, refused, lastRevision };
}

/**
 * One host's inventory under the same rules; undefined when it has none, a refusal when it was forged
 * (forged-delivery.ts) or its value is refused by `parseHostEntry`.
 */
export async function readHostInventory(nc: NatsConnection, host: string): Promise<ParseResult<HostInventory> | undefined> {
  const stored = await (await openBucket(nc, buckets.hosts)).read(host);
  if (!stored) return undefined;
  return stored.forged ? { ok: false, reason: `the entry of key ${host} was stored there for another host` } : parseHostEntry(host, stored.value);
}

import { readFile } from "node:fs/promises";
import { buckets } from "@vmbs/contracts";
import { openBucket, type NatsConnection } from "@vmbs/bus";

/** The kernel's random id of this boot: it changes on every reboot or crash of the host. */
async function readBootId(path = "/proc/sys/kernel/random/boot_id"): Promise<string> {
  return (await readFile(path, "utf8")).trim();
}

export interface BootTracker {
  /** True when an earlier agent recorded a different boot id (the host restarted or crashed since). */
  changed(): Promise<boolean>;
  /** Stores the current boot id; call it only after the startup checks, so a crash during them is seen again. */
  record(): Promise<void>;
}

/** Keeps `<host>.boot` in the agentState bucket. A host with no record yet counts as unchanged (first start). */
export async function createBootTracker(nc: NatsConnection, host: string, bootIdPath?: string): Promise<BootTracker> {
  const { kv } = await openBucket(nc, buckets.agentState);
  const key = `${host}.boot`;
  const current = await readBootId(bootIdPath);
  return {
    async changed() {
      const entry = await kv.get(key);
      const recorded = entry && entry.operation === "PUT" ? entry.string().trim() : "";
      return recorded !== "" && recorded !== current;
    },
    async record() {
      await kv.put(key, current);
    },
  };
}

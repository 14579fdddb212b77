import { z } from "zod";
import { parsePayload, type ParseResult } from "./parse-payload.js";
import { isHostToken } from "./subjects.js";

/** Value of a host's key in the `vmbs_hosts` bucket, rewritten at every heartbeat. */
export const hostInventorySchema = z.object({
  host: z.string(),
  hostname: z.string(),
  agentVersion: z.string(),
  heartbeatAt: z.string(),
  /** Versions of what the agent drives, e.g. `{ virtnbdbackup: "2.18", libvirt: "9.0.0", qemu: "7.2.0" }`. */
  versions: z.record(z.string(), z.string()).optional(),
  domains: z.array(
    z.object({
      name: z.string(),
      state: z.string(),
      /** False for domains in VM_IGNORED_LIST or outside a set VM_ALLOWED_LIST. */
      scheduled: z.boolean(),
    }),
  ),
});
export type HostInventory = z.infer<typeof hostInventorySchema>;

/**
 * A host's entry of the `vmbs_hosts` bucket, trusted for its key only: an agent may write just its own key, so the
 * key is the host, and a value naming another host (or a host id that is no subject token) is refused — else one
 * agent could schedule backups for another, or hide another's alarms.
 */
export function parseHostEntry(key: string, value: Uint8Array | string): ParseResult<HostInventory> {
  const parsed = parsePayload(hostInventorySchema, value);
  if (!parsed.ok) return parsed;
  if (parsed.value.host !== key) return { ok: false, reason: `the entry of key ${key} names host ${parsed.value.host}` };
  if (!isHostToken(key)) return { ok: false, reason: `${JSON.stringify(key)} is not a host id` };
  return parsed;
}

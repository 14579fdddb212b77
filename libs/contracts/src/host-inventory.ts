import { z } from "zod";

/** Value of a host's key in the `vmbs_hosts` bucket, rewritten at every heartbeat. */
export const hostInventorySchema = z.object({
  host: z.string(),
  hostname: z.string(),
  agentVersion: z.string(),
  heartbeatAt: z.string(),
  domains: z.array(
    z.object({
      name: z.string(),
      state: z.string(),
      /** False for domains in VM_IGNORED_LIST. */
      scheduled: z.boolean(),
    }),
  ),
});
export type HostInventory = z.infer<typeof hostInventorySchema>;

import { z } from "zod";
import { commandEnvelope, runEventEnvelope } from "./envelope.js";
import { domainNameSchema } from "./domain-name.js";
import { drillEventTypes } from "./subjects.js";

/** Payload of `vmbs.cmd.drill.<host>`. Without `domain`: every chain (active and archived) of that host's backup root. */
export const drillCommandSchema = z
  .object({
    domain: domainNameSchema.optional(),
    ...commandEnvelope,
  })
  .strict();
export type DrillCommand = z.infer<typeof drillCommandSchema>;

/** One thing a drill found wrong in a chain: the checkpoint and file it concerns, when it concerns one. */
const drillFaultSchema = z.object({
  /** e.g. `virtnbdbackup.2`. */
  checkpoint: z.string().optional(),
  /** Relative to the chain folder, e.g. `vda.inc.virtnbdbackup.2.data`. */
  file: z.string().optional(),
  reason: z.string(),
});
export type DrillFault = z.infer<typeof drillFaultSchema>;

/** The drill of one chain (a backup set: a domain's active chain folder or one of its archives). */
const drillChainResultSchema = z.object({
  domain: z.string(),
  /** Folder name of the set: `<domain>` (active) or `<domain>.<timestamp>` (archived). */
  set: z.string(),
  ok: z.boolean(),
  /** The newest checkpoint, the one restored; absent when the set has none. */
  checkpoint: z.string().optional(),
  checkpoints: z.number().int().nonnegative(),
  /** Data files whose sha256 matched the recorded one. */
  verifiedFiles: z.number().int().nonnegative(),
  /** Data files without a recorded checksum (older backups): not checked, not a failure. */
  unverifiedFiles: z.array(z.string()),
  /** Restored images checked (qemu-img check, virtual size), by disk target. */
  images: z.array(z.object({ disk: z.string(), virtualSize: z.number().int().nonnegative() })),
  faults: z.array(drillFaultSchema),
  durationMs: z.number().int().nonnegative(),
});
export type DrillChainResult = z.infer<typeof drillChainResultSchema>;

/**
 * `vmbs.evt.drill.<host>.started|completed|failed`: one drill run over the chains of one domain or of all.
 * `failed` names the first fault (`domain`/`set`/`checkpoint`/`file` of `failure`) and says it in `reason`;
 * `chains` holds every chain's result.
 */
export const drillEventSchema = z.object({
  ...runEventEnvelope,
  type: z.enum(drillEventTypes),
  /** The domain the command named; absent for a drill of every chain. */
  domain: z.string().optional(),
  chains: z.array(drillChainResultSchema).optional(),
  /** The first fault found, with the chain it is in (on `failed`; absent when the command itself was refused). */
  failure: drillFaultSchema.extend({ domain: z.string(), set: z.string() }).optional(),
  /** Why it failed, in words a person can act on; on `failed` only. */
  reason: z.string().optional(),
  durationMs: z.number().int().nonnegative().optional(),
});
export type DrillEvent = z.infer<typeof drillEventSchema>;

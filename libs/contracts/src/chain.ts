import { z } from "zod";
import { commandEnvelope, eventEnvelope } from "./envelope.js";
import { chainEventTypes } from "./subjects.js";
import { domainNameSchema } from "./domain-name.js";

/**
 * Payload of `vmbs.cmd.check.<host>`, `vmbs.cmd.rotate.<host>` and `vmbs.cmd.retention.<host>`.
 * Without `domain`: every scheduled domain of that host.
 */
export const chainCommandSchema = z
  .object({
    domain: domainNameSchema.optional(),
    /**
     * Retention only: change nothing, answer with `planned` events — each archive retention would delete (with
     * its reason) and whether the active chain would be archived at the next backup. Refused by check and rotate.
     */
    dryRun: z.boolean().optional(),
    ...commandEnvelope,
  })
  .strict();
export type ChainCommand = z.infer<typeof chainCommandSchema>;

/** `vmbs.evt.chain.<host>.<type>`: one event per check result or destructive step, always with a reason. */
export const chainEventSchema = z.object({
  ...eventEnvelope,
  type: z.enum(chainEventTypes),
  domain: z.string().optional(),
  /** What started it: "startup", "after-failure", "before-backup", "command", "rotation", "retention". */
  trigger: z.string(),
  /** The planner's verdict, e.g. keep / repair / new-chain / needs-user. */
  plan: z.string().optional(),
  /** The step carried out (on `planned`: the one that would be), e.g. "delete-checkpoint virtnbdbackup.3" or "archive → web.2026-11-26+03:00:00.1234567890". */
  step: z.string().optional(),
  /** Folder names involved (archives created or deleted), relative to the backup root. */
  folders: z.array(z.string()).optional(),
  reason: z.string(),
});
export type ChainEvent = z.infer<typeof chainEventSchema>;

import { z } from "zod";

/**
 * Payload of `vmbs.evt.notify.<host>.failed`: a notification about one event that could not be delivered to one
 * target within its retries. `target` is the target's display form (no secrets); `host` the original event's host.
 */
export const notifyFailedSchema = z.object({
  type: z.literal("failed"),
  host: z.string(),
  domain: z.string().optional(),
  /** Stable id of the target (derived from its URL, which it does not reveal). */
  targetId: z.string(),
  target: z.string(),
  /** Subject of the event that was to be announced. */
  eventSubject: z.string(),
  attempts: z.number().int(),
  reason: z.string(),
  at: z.string(),
});
export type NotifyFailedEvent = z.infer<typeof notifyFailedSchema>;

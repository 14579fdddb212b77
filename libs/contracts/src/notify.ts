import { z } from "zod";
import { eventEnvelope } from "./envelope.js";

/**
 * Payload of `vmbs.evt.notify.<host>.failed`: a notification about one event that could not be delivered to one
 * target within its retries. `target` is the target's display form (no secrets); `host` the original event's host.
 */
export const notifyFailedSchema = z.object({
  ...eventEnvelope,
  type: z.literal("failed"),
  domain: z.string().optional(),
  /** Stable id of the target (derived from its URL, which it does not reveal). */
  targetId: z.string(),
  target: z.string(),
  /** Subject of the event that was to be announced. */
  eventSubject: z.string(),
  attempts: z.number().int(),
  reason: z.string(),
});
export type NotifyFailedEvent = z.infer<typeof notifyFailedSchema>;

/** Payload of `vmbs.evt.notify.<host>.digest`: one scheduled run of a host (all its domains' outcomes), once. */
export const notifyDigestSchema = z.object({
  ...eventEnvelope,
  type: z.literal("digest"),
  /** The scheduler's `schedule:<slot>` request id shared by the run's commands and events. */
  requestId: z.string(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  bytesWritten: z.number(),
  durationMs: z.number(),
  domains: z.array(
    z.object({ domain: z.string(), outcome: z.enum(["completed", "failed"]), bytesWritten: z.number(), durationMs: z.number(), reason: z.string().optional() }),
  ),
  /** Chain events of the run that need a person. */
  attention: z.array(z.object({ domain: z.string().optional(), reason: z.string() })),
});
export type NotifyDigestEvent = z.infer<typeof notifyDigestSchema>;

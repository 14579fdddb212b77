import { z } from "zod";

/**
 * The fields every command and event shares, typed once. Each service's contract spreads them into its own
 * payload schema and adds only what is its own.
 */

/** Every command may carry a caller-chosen id, copied into every event the command causes. */
export const commandEnvelope = {
  requestId: z.string().max(200).optional(),
};

/** Every event says which host announced it, for which command (when one caused it), and when. */
export const eventEnvelope = {
  host: z.string(),
  requestId: z.string().optional(),
  at: z.string(),
};

/** The events of one run (a backup, a sync, a drill, a restore): its started and completed/failed share `runId`. */
export const runEventEnvelope = {
  ...eventEnvelope,
  runId: z.string(),
};

/**
 * What every progress message (`vmbs.progress.<service>.<host>`) reports: bytes done so far, the total when known
 * (absent until it is), and the rate over the last interval. What the bytes count is each service's own (see its
 * schema).
 */
export const progressFigures = {
  bytesDone: z.number().int().nonnegative(),
  bytesTotal: z.number().int().nonnegative().optional(),
  /** Bytes per second over the last interval. */
  rate: z.number().nonnegative(),
};

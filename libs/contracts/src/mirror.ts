import { z } from "zod";
import { commandEnvelope, progressFigures, runEventEnvelope } from "./envelope.js";
import { domainNameSchema } from "./domain-name.js";
import { mirrorEventTypes } from "./subjects.js";

/** Payload of `vmbs.cmd.mirror.<host>`. Without `domain`: every chain folder of that host's backup root. */
export const mirrorCommandSchema = z
  .object({
    domain: domainNameSchema.optional(),
    /**
     * Change nothing: for each target answer with one `planned` event — whether the next sync would archive the
     * mirror copy and which mirror archives it would then delete — instead of syncing.
     */
    dryRun: z.boolean().optional(),
    ...commandEnvelope,
  })
  .strict();
export type MirrorCommand = z.infer<typeof mirrorCommandSchema>;

/**
 * What started a sync: a completed backup, RSYNC_SCHEDULE, a command, a retry after a failed sync, or the
 * catch-up at start (a sync that failed before a restart is not lost).
 */
export const mirrorTriggers = ["backup", "schedule", "command", "retry", "startup"] as const;

/**
 * `vmbs.evt.mirror.<host>.started|completed|failed`, one run = one domain synced to one target;
 * `vmbs.evt.mirror.<host>.planned`: a dry run's answer for one domain and target (nothing was changed).
 */
export const mirrorEventSchema = z.object({
  ...runEventEnvelope,
  type: z.enum(mirrorEventTypes),
  /** Absent only when a command was refused before a domain could be read from it. */
  domain: z.string().optional(),
  trigger: z.enum(mirrorTriggers),
  /** The mirror target, credentials never included (`user@host:/path` or a local path). */
  target: z.string(),
  /** Bytes rsync sent for this run (its `--stats` "Total bytes sent"); 0 on `started`. */
  bytesTransferred: z.number().int().nonnegative().default(0),
  durationMs: z.number().int().nonnegative().default(0),
  /** Attempt number of this sync since the last success (1 = first try). */
  attempt: z.number().int().positive().default(1),
  /** The mirror copy archived before this sync (the local chain rotated or is gone), and archives deleted by retention. */
  archivedTo: z.string().optional(),
  pruned: z.array(z.string()).optional(),
  /** On `planned` only: the archive name the mirror copy would get at the next sync (absent: it would not be archived). */
  wouldArchiveTo: z.string().optional(),
  /** On `planned` only: the mirror archives that sync would then delete. */
  wouldPrune: z.array(z.string()).optional(),
  /** Files compared after the sync (names, sizes, mtimes equal the local chain's). */
  verifiedFiles: z.number().int().nonnegative().optional(),
  /** Why it failed, in words a person can act on; on `failed`. On `planned`: the plan in words. */
  reason: z.string().optional(),
});
export type MirrorEvent = z.infer<typeof mirrorEventSchema>;
export type MirrorEventInput = z.input<typeof mirrorEventSchema>;
/**
 * Payload of `vmbs.progress.mirror.<host>` (core NATS, outside VMBS_EVT: ephemeral, never stored nor replayed),
 * published by the mirror every few seconds while rsync copies a chain, for a person watching `vmbs mirror`. rclone
 * targets publish none.
 */
export const mirrorProgressSchema = z.object({
  ...runEventEnvelope,
  type: z.literal("progress"),
  domain: z.string(),
  /** The mirror target, as in the run's events. */
  target: z.string(),
  /**
   * bytesDone: bytes of the chain's files rsync has gone through so far (its `--info=progress2` count); bytesTotal:
   * what rsync has to go through (done + what it says is left), absent before it said.
   */
  ...progressFigures,
});
export type MirrorProgress = z.infer<typeof mirrorProgressSchema>;

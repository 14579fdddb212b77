import { z } from "zod";
import { commandEnvelope, progressFigures, runEventEnvelope } from "./envelope.js";
import { domainNameSchema } from "./domain-name.js";

/** `auto` picks full for a new chain and inc when one exists; `full` starts a new chain (the old one is archived). */
export const backupLevels = ["auto", "full", "inc"] as const;
export type BackupLevel = (typeof backupLevels)[number];

/** Payload of `vmbs.cmd.backup.<host>`. Without `domain`: every scheduled domain of that host. */
export const backupCommandSchema = z
  .object({
    domain: domainNameSchema.optional(),
    level: z.enum(backupLevels, { error: `level must be one of ${backupLevels.join(", ")}` }).default("auto"),
    ...commandEnvelope,
  })
  .strict();
export type BackupCommand = z.infer<typeof backupCommandSchema>;

const eventBase = {
  ...runEventEnvelope,
  /** Absent only when a command was rejected before a domain could be read from it. */
  domain: z.string().optional(),
};

/** One run of a domain's pre or post hook (VMBS_POLICY_FILE), as the backup's final event reports it. */
export const hookRunSchema = z.object({
  phase: z.enum(["pre", "post"]),
  argv: z.array(z.string()),
  ok: z.boolean(),
  exitCode: z.number().int().optional(),
  timedOut: z.boolean().optional(),
  durationMs: z.number().int().nonnegative(),
  /** The end of what it printed (stdout and stderr). */
  output: z.string().optional(),
});
export type HookRun = z.infer<typeof hookRunSchema>;

/** Level actually run by the engine (`auto` resolved). */
const engineLevels = ["full", "inc"] as const;

const backupStartedSchema = z.object({
  ...eventBase,
  type: z.literal("started"),
  level: z.enum(engineLevels),
  requestedLevel: z.enum(backupLevels),
});
export const backupCompletedSchema = z.object({
  ...eventBase,
  type: z.literal("completed"),
  level: z.enum(engineLevels),
  /** Checkpoint created by this run, e.g. `virtnbdbackup.3`. */
  checkpoint: z.string(),
  /** Bytes of the data files this run wrote. */
  bytesWritten: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
  /** Of durationMs, the time virtnbdbackup itself ran (the rest is the agent's checks and bookkeeping). */
  engineMs: z.number().int().nonnegative().optional(),
  /** Chain folder, relative to LOCAL_BACKUP_PATH (the domain name). */
  folder: z.string(),
  /** The previous chain folder when this run archived it first (full level on an existing chain). */
  archivedTo: z.string().optional(),
  /** The domain's hooks that ran, in order. */
  hooks: z.array(hookRunSchema).optional(),
});
const backupFailedSchema = z.object({
  ...eventBase,
  type: z.literal("failed"),
  level: z.enum(engineLevels).optional(),
  checkpoint: z.string().optional(),
  bytesWritten: z.number().int().nonnegative().default(0),
  durationMs: z.number().int().nonnegative().default(0),
  /** Why it failed, in words a person can act on. */
  reason: z.string(),
  /** The command was refused without running: its domain held as many backup commands as it may (a flood). */
  refused: z.boolean().optional(),
  hooks: z.array(hookRunSchema).optional(),
});
export const backupEventSchema = z.discriminatedUnion("type", [
  backupStartedSchema,
  backupCompletedSchema,
  backupFailedSchema,
]);
/**
 * Payload of `vmbs.progress.backup.<host>` (core NATS, outside VMBS_EVT: ephemeral, never stored nor replayed),
 * published by the agent at most every few seconds while the engine runs, for a person watching `vmbs backup`.
 */
export const backupProgressSchema = z.object({
  ...runEventEnvelope,
  domain: z.string(),
  type: z.literal("progress"),
  /**
   * bytesDone: bytes of data files the engine has written so far in this run; bytesTotal: bytes of data the engine
   * said it will copy (the sum of its "bytes of data extents to backup" lines so far; a disk not yet started is
   * missing), absent until it said. Compression makes bytesDone end below it.
   */
  ...progressFigures,
});
export type BackupProgress = z.infer<typeof backupProgressSchema>;
export type BackupStarted = z.infer<typeof backupStartedSchema>;
export type BackupCompleted = z.infer<typeof backupCompletedSchema>;
export type BackupFailed = z.input<typeof backupFailedSchema>;
export type BackupEvent = z.infer<typeof backupEventSchema>;

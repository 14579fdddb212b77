import { z } from "zod";
import { commandEnvelope, progressFigures, runEventEnvelope } from "./envelope.js";
import { domainNameSchema } from "./domain-name.js";
import { restoreEventTypes } from "./subjects.js";

/*
 * Request/reply payloads of the restore service (`vmbs.svc.restore.<host>.<endpoint>`, endpoints in
 * `restoreEndpoints`) and its events (`vmbs.evt.restore.<host>.<type>`). A refused request is answered with the
 * NATS micro error headers `Nats-Service-Error` / `Nats-Service-Error-Code` and a JSON `{ error }` body.
 */

/** A folder name of a backup set: the domain's active chain folder or one of its archives. */
export const setNameSchema = z.string().min(1).max(255).refine((s) => !s.includes("/") && s !== "." && s !== "..", "must be a folder name");

/** An absolute path as a request gives it; the service resolves it and confines it to its roots. */
export const requestPathSchema = z.string().startsWith("/").max(4096).refine((p) => !p.includes("\0"), "must not contain a NUL byte");

/** `sets`: the backup sets of a domain in LOCAL_BACKUP_PATH, or in `from`, a folder inside it (e.g. a mounted mirror). */
export const restoreSetsRequestSchema = z.object({ domain: domainNameSchema, from: requestPathSchema.optional() }).strict();
export type RestoreSetsRequest = z.infer<typeof restoreSetsRequestSchema>;

const backupSetSchema = z.object({
  /** Folder name: `<domain>` (active) or `<domain>.<timestamp>` (archived). */
  name: z.string(),
  active: z.boolean(),
  checkpoints: z.number().int(),
  bytes: z.number(),
});
export type BackupSet = z.infer<typeof backupSetSchema>;
export const restoreSetsReplySchema = z.object({ sets: z.array(backupSetSchema) });

/** `checkpoints`: the restore points of one set (default: the active chain). */
export const restoreCheckpointsRequestSchema = restoreSetsRequestSchema.extend({ set: setNameSchema.optional() }).strict();
export type RestoreCheckpointsRequest = z.infer<typeof restoreCheckpointsRequestSchema>;

const restorePointSchema = z.object({
  /** Position in the set, 0 = the full backup; what `--checkpoint N` names. */
  index: z.number().int(),
  name: z.string(),
  /** Creation time (ISO) from the checkpoint XML, else the data files' mtime. */
  time: z.string().nullable(),
  /** Bytes of this checkpoint's data files. */
  bytes: z.number(),
  /** Disk targets with data in this checkpoint. */
  disks: z.array(z.string()),
});
export type RestorePoint = z.infer<typeof restorePointSchema>;
export const restoreCheckpointsReplySchema = z.object({ set: z.string(), checkpoints: z.array(restorePointSchema) });

/** `run`: restore a set up to a checkpoint, as a new domain (`as`) or onto the existing one (`inPlace`). */
export const restoreRunRequestSchema = restoreCheckpointsRequestSchema
  .extend({
    /** Index into the set's checkpoints; default the newest. */
    checkpoint: z.number().int().min(0).optional(),
    /** Only this disk target (e.g. "vdb"). */
    disk: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).optional(),
    as: domainNameSchema.optional(),
    inPlace: z.boolean().optional(),
    /**
     * Folder for the new domain's images; default the folder of the source domain's first disk. Must be a storage
     * pool path or the folder of an image of a domain defined on this host.
     */
    targetDir: requestPathSchema.optional(),
    /** Define the new domain in libvirt (default true); otherwise only its XML is written next to the images. */
    define: z.boolean().optional(),
    /** Consent to change an existing domain: shut it down (VM_WAIT_TIME) and replace its images. */
    consent: z.boolean().optional(),
    ...commandEnvelope,
  })
  .strict()
  .refine((r) => (r.as !== undefined) !== (r.inPlace === true), "exactly one of `as` and `inPlace` is required");
export type RestoreRunRequest = z.infer<typeof restoreRunRequestSchema>;

export const restoreRunReplySchema = z.object({
  domain: z.string(),
  set: z.string(),
  checkpoint: z.string(),
  images: z.array(z.string()),
  defined: z.boolean(),
  xmlPath: z.string().optional(),
  /** The UEFI variable store (nvram) written from the set's copy at the checkpoint (new domain or in place). */
  nvram: z.string().optional(),
  /** The TPM state file (swtpm's, under the domain's UUID) written from the set's copy at the checkpoint. */
  tpmState: z.string().optional(),
  archivedAs: z.string().optional(),
  /** What the saved domain XML held that the new domain was defined without (see the plan's `stripped`). */
  stripped: z.array(z.string()).optional(),
  /** The run's id, as in its events (set by the service once the run is over). */
  runId: z.string().optional(),
});
export type RestoreRunReply = z.infer<typeof restoreRunReplySchema>;

/** `plan` (same request as `run`): what a run would do, without doing it. */
export const restorePlanReplySchema = z.object({
  domain: z.string(),
  target: z.string(),
  set: z.string(),
  checkpoint: z.string(),
  disks: z.array(z.string()),
  /** The images the run would write (in place: the current images it would replace). */
  images: z.array(z.string()),
  steps: z.array(z.string()),
  /**
   * What the saved domain XML holds that a new domain is defined without, since a restore cannot bring it back
   * safely: disks that are not restored image files (block, iSCSI, network, pool volumes), host devices, and
   * QEMU pass-through (`<qemu:commandline>` and the like).
   */
  stripped: z.array(z.string()).optional(),
  /** Set when the run would be refused as things stand, with the reason. */
  refusal: z.string().optional(),
});
export type RestorePlanReply = z.infer<typeof restorePlanReplySchema>;

/** `vmbs.evt.restore.<host>.<type>`; `progress` announces each step, destructive ones included. */
export const restoreEventSchema = z.object({
  ...runEventEnvelope,
  type: z.enum(restoreEventTypes),
  /**
   * Absent for a restore; "replicate" for a replication (replicate.ts), which has no `set` but a `to` URI;
   * "instant" for an instant recovery, its finish and its abandon (instant-restore.ts).
   */
  operation: z.enum(["replicate", "instant"]).optional(),
  domain: z.string(),
  /** The domain written: the new name, or `domain` itself in place. */
  target: z.string(),
  set: z.string().optional(),
  to: z.string().optional(),
  checkpoint: z.string().optional(),
  step: z.string().optional(),
  reason: z.string().optional(),
  images: z.array(z.string()).optional(),
  /** Progress of a copy (an instant VM's finish): bytes copied of bytes to copy so far, over all its disks. */
  bytesDone: z.number().optional(),
  bytesTotal: z.number().optional(),
});
export type RestoreEvent = z.infer<typeof restoreEventSchema>;

/**
 * Payload of `vmbs.progress.restore.<host>` (core NATS, outside VMBS_EVT: ephemeral, never stored nor replayed),
 * published by the restore service every few seconds while a restore's engine or a replication's image copy runs,
 * for a person watching `vmbs restore` / `vmbs replicate`; `requestId` is the request's.
 */
export const restoreProgressSchema = z.object({
  ...runEventEnvelope,
  type: z.literal("progress"),
  /** As on the run's events: "replicate" for a replication. */
  operation: z.literal("replicate").optional(),
  domain: z.string(),
  /** The domain written. */
  target: z.string(),
  /**
   * A restore: bytesDone is what the engine has allocated in its new images so far, bytesTotal the data files of the
   * set up to the checkpoint (what the engine reads; incremental overwrites of the same blocks and compression make
   * the images end below or above it). A replication: bytes of the disks' virtual size `qemu-img convert` has gone
   * through, of that virtual size.
   */
  ...progressFigures,
});
export type RestoreProgress = z.infer<typeof restoreProgressSchema>;

import { z } from "zod";
import { commandEnvelope } from "./envelope.js";
import { domainNameSchema } from "./domain-name.js";
import { requestPathSchema, setNameSchema } from "./restore.js";

/*
 * Instant recovery (`vmbs.svc.restore.<host>.{instant,instant-finish,instant-abandon}`): a new domain runs at once
 * on qcow2 overlays over the backup chain, served read-only by nbdkit; `instant-finish` copies its disks onto
 * local images while it runs and drops the chain, `instant-abandon` removes it and everything it made. Its events
 * are the restore events with `operation: "instant"`.
 */

/** `instant`: run checkpoint `checkpoint` (default the newest) of a set of `domain` as the new domain `as`. */
export const instantRestoreRequestSchema = z
  .object({
    domain: domainNameSchema,
    /** A backup set of the domain in LOCAL_BACKUP_PATH (default its active chain). */
    set: setNameSchema.optional(),
    checkpoint: z.number().int().min(0).optional(),
    as: domainNameSchema,
    /**
     * Folder of the overlays (while it runs from the chain) and of the final images (after `instant-finish`);
     * default the folder of the source domain's first disk. Must be a storage pool path or the folder of an
     * image of a domain defined on this host, as for a restore.
     */
    targetDir: requestPathSchema.optional(),
    ...commandEnvelope,
  })
  .strict();
export type InstantRestoreRequest = z.infer<typeof instantRestoreRequestSchema>;

const instantDiskSchema = z.object({
  target: z.string(),
  /** The qcow2 overlay QEMU writes to; its backing file is the NBD export of the chain. */
  overlay: z.string(),
  /** The unix socket of the disk's NBD export. */
  socket: z.string(),
  /** Where `instant-finish` puts the disk. */
  image: z.string(),
});

export const instantRestoreReplySchema = z.object({
  /** The new domain, running. */
  domain: z.string(),
  source: z.string(),
  set: z.string(),
  checkpoint: z.string(),
  disks: z.array(instantDiskSchema),
  /** Milliseconds from the request to the running domain. */
  ms: z.number(),
  /** What the saved domain XML held that the new domain was defined without (see the plan of a restore). */
  stripped: z.array(z.string()).optional(),
  runId: z.string().optional(),
});
export type InstantRestoreReply = z.infer<typeof instantRestoreReplySchema>;

/** `instant-finish` and `instant-abandon` name the instant domain; both change it and need consent. */
export const instantEndRequestSchema = z
  .object({
    domain: domainNameSchema,
    /** Consent to the change (the CLI's --yes or a person's answer on its terminal). */
    consent: z.literal(true),
    ...commandEnvelope,
  })
  .strict();
export type InstantEndRequest = z.infer<typeof instantEndRequestSchema>;

export const instantFinishReplySchema = z.object({
  domain: z.string(),
  /** The domain's disks now: local images, nothing served from the chain. */
  images: z.array(z.string()),
  /** Bytes the NBD exports read from the chain over the instant VM's life (its reads, then the copy). */
  chainReadBytes: z.number().optional(),
  /** Milliseconds of the copy and pivot. */
  ms: z.number(),
  runId: z.string().optional(),
});
export type InstantFinishReply = z.infer<typeof instantFinishReplySchema>;

export const instantAbandonReplySchema = z.object({
  domain: z.string(),
  /** The files and folders removed (overlays, sockets, a finish's partial images, the UEFI variables). */
  removed: z.array(z.string()),
  runId: z.string().optional(),
});
export type InstantAbandonReply = z.infer<typeof instantAbandonReplySchema>;

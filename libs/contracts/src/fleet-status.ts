import { z } from "zod";
import { eventEnvelope } from "./envelope.js";
import { domainNameSchema } from "./domain-name.js";
import { isHostToken } from "./subjects.js";

/** Request of `vmbs.svc.status.fleet`: the whole fleet, one host, or one domain (of one host or of any). */
export const fleetStatusRequestSchema = z
  .object({
    host: z.string().refine(isHostToken, { message: "host must be a host id (1-64 of [A-Za-z0-9_-])" }).optional(),
    domain: domainNameSchema.optional(),
    /** Only the hosts after this one (by name): the next part of a reply that was cut, from its `next`. */
    after: z.string().refine(isHostToken, { message: "after must be a host id (1-64 of [A-Za-z0-9_-])" }).optional(),
  })
  .strict();
export type FleetStatusRequest = z.infer<typeof fleetStatusRequestSchema>;

const lastBackupSchema = z.object({
  at: z.string(),
  level: z.enum(["full", "inc"]),
  checkpoint: z.string(),
  bytesWritten: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
});

/** The domain's mirror copy as its last sync left it. */
const mirrorStateSchema = z.object({
  /** `syncing` between a sync's start and its end; `failed` until a later sync completes. */
  state: z.enum(["syncing", "in-sync", "failed"]),
  at: z.string(),
  /** The last completed sync. */
  lastSyncAt: z.string().nullable(),
  target: z.string(),
  reason: z.string().optional(),
});

const lastDrillSchema = z.object({
  at: z.string(),
  ok: z.boolean(),
  /** The sets (chain folders) the drill restored and verified. */
  sets: z.number().int().nonnegative(),
  reason: z.string().optional(),
});

/** One domain of one host, as the status service sees it. */
export const domainStatusSchema = z.object({
  domain: z.string(),
  /** libvirt's state at the host's last heartbeat (`unknown` when the host's inventory no longer lists it). */
  state: z.string(),
  scheduled: z.boolean(),
  lastBackup: lastBackupSchema.nullable(),
  lastFailure: z.object({ at: z.string(), reason: z.string() }).nullable(),
  /** Checkpoints in the active chain after the last completed backup. */
  chainLength: z.number().int().nonnegative(),
  /** Archived chains of this domain the status service saw made and not deleted since. */
  archives: z.number().int().nonnegative(),
  /** The next run of BACKUP_SCHEDULE for a scheduled domain. */
  nextRun: z.string().nullable(),
  rpo: z.object({ limitSeconds: z.number().int().positive(), breached: z.boolean() }),
  mirror: mirrorStateSchema.nullable(),
  lastDrill: lastDrillSchema.nullable(),
  /** What a person should look at, in words; empty when all is well. */
  attention: z.array(z.string()),
});
export type DomainStatus = z.infer<typeof domainStatusSchema>;

export const hostStatusSchema = z.object({
  host: z.string(),
  /** The agent heart-beats (every 30 s); not alive after two missed beats. */
  alive: z.boolean(),
  lastSeen: z.string().nullable(),
  versions: z.record(z.string(), z.string()),
  domains: z.array(domainStatusSchema),
});
export type HostStatus = z.infer<typeof hostStatusSchema>;

/** Reply of `vmbs.svc.status.fleet` and what `vmbs status --json` prints. */
export const fleetStatusSchema = z.object({
  at: z.string(),
  hosts: z.array(hostStatusSchema),
  /**
   * Set when the reply was cut to fit one NATS message (the server's max_payload, 1 MiB by default: ~2 000 domains):
   * the last host it holds. Ask again with `after` set to it for the hosts that follow.
   */
  next: z.string().optional(),
});
export type FleetStatus = z.infer<typeof fleetStatusSchema>;

/** Request of `vmbs.svc.status.history`: one domain's recent runs (the status page's chart). */
export const domainHistoryRequestSchema = z
  .object({ host: z.string().refine(isHostToken, { message: "host must be a host id" }), domain: domainNameSchema })
  .strict();
export type DomainHistoryRequest = z.infer<typeof domainHistoryRequestSchema>;

export const backupRunSchema = z.object({
  at: z.string(),
  level: z.enum(["full", "inc"]).nullable(),
  outcome: z.enum(["completed", "failed"]),
  bytesWritten: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
});
export type BackupRun = z.infer<typeof backupRunSchema>;

export const domainHistorySchema = z.object({ host: z.string(), domain: z.string(), runs: z.array(backupRunSchema) });
export type DomainHistory = z.infer<typeof domainHistorySchema>;

/** `vmbs.evt.fleet.<host>.silent`: the host's agent stopped heart-beating; once per episode. */
export const fleetSilentSchema = z.object({
  ...eventEnvelope,
  type: z.literal("silent"),
  lastHeartbeatAt: z.string(),
  reason: z.string(),
});
/** `vmbs.evt.fleet.<host>.back`: a silent host heart-beats again. */
export const fleetBackSchema = z.object({
  ...eventEnvelope,
  type: z.literal("back"),
  /** When it fell silent (its last heartbeat before). */
  silentSince: z.string(),
  reason: z.string(),
});
/** `vmbs.evt.fleet.<host>.stale`: a scheduled domain's last good backup is older than its RPO; once per episode. */
export const fleetStaleSchema = z.object({
  ...eventEnvelope,
  type: z.literal("stale"),
  domain: z.string(),
  /** The last completed backup; absent when none was ever seen. */
  lastCompletedAt: z.string().optional(),
  /** Since when the domain has been waiting (its last completed backup, else when it was first seen scheduled). */
  since: z.string(),
  rpoSeconds: z.number().int().positive(),
  reason: z.string(),
});
export const fleetEventSchema = z.discriminatedUnion("type", [fleetSilentSchema, fleetBackSchema, fleetStaleSchema]);
export type FleetEvent = z.infer<typeof fleetEventSchema>;
export type FleetSilentEvent = z.infer<typeof fleetSilentSchema>;
export type FleetBackEvent = z.infer<typeof fleetBackSchema>;
export type FleetStaleEvent = z.infer<typeof fleetStaleSchema>;

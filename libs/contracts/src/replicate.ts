import { z } from "zod";
import { domainNameSchema } from "./domain-name.js";

/*
 * Replication (`vmbs.svc.restore.<host>.replicate` and `.replicate-plan`): a persistent domain of the host's
 * LIBVIRT_URI copied as a new domain onto a libvirt connection (this one or another host's, `qemu+ssh://…`).
 * Its events are the restore service's (`vmbs.evt.restore.<host>.*`) with `operation: "replicate"`.
 */

/** Per NIC: keep the source's MAC, or a random 52:54:00 one unused on the target. */
export const macPolicySchema = z.enum(["keep", "random"]);
export type MacPolicy = z.infer<typeof macPolicySchema>;

/** A libvirt connection URI, e.g. `qemu:///system` or `qemu+ssh://root@hv2:22/system?keyfile=/k&no_verify=1`. */
const libvirtUriSchema = z.string().regex(/^[a-z][a-z0-9+.-]*:\/\/[^\s]*$/, "must be a libvirt URI such as qemu:///system or qemu+ssh://root@host/system");

export const replicateRequestSchema = z
  .object({
    /** A persistent domain of this host's LIBVIRT_URI. */
    domain: domainNameSchema,
    /** Name of the copy; refused if a domain of exactly that name exists on the target. */
    as: domainNameSchema,
    /** Target libvirt URI; default this host's LIBVIRT_URI. */
    to: libvirtUriSchema.optional(),
    /** One policy for every NIC, or one per NIC in the XML's order; default random. */
    mac: z.union([macPolicySchema, z.array(macPolicySchema)]).optional(),
    /** Folder of the copied images on the target; default the folder of each source image. */
    diskDir: z.string().startsWith("/").optional(),
    /** Copy the disks (default true); false keeps the source's image paths (e.g. shared storage). */
    copyDisks: z.boolean().optional(),
    /** Consent to shut a running source down for a consistent copy (VM_WAIT_TIME); it is started again afterwards. */
    consent: z.boolean().optional(),
    requestId: z.string().max(200).optional(),
  })
  .strict();
export type ReplicateRequest = z.infer<typeof replicateRequestSchema>;

export const replicateReplySchema = z.object({
  domain: z.string(),
  target: z.string(),
  to: z.string(),
  uuid: z.string(),
  macs: z.array(z.string()),
  /** The copy's images on the target (the source's paths when disks were not copied). */
  images: z.array(z.string()),
  nvram: z.string().optional(),
  /** The source was shut down for the copy and started again. */
  restarted: z.boolean(),
  runId: z.string().optional(),
});
export type ReplicateReply = z.infer<typeof replicateReplySchema>;

/** `replicate-plan` (same request): what a replication would do, without doing it. */
export const replicatePlanReplySchema = z.object({
  domain: z.string(),
  target: z.string(),
  to: z.string(),
  state: z.string(),
  /** Source image → target image, with the format it is copied in. */
  disks: z.array(z.object({ target: z.string(), source: z.string(), image: z.string(), format: z.string() })),
  /** Per NIC in XML order: the source MAC and the policy. */
  nics: z.array(z.object({ mac: z.string().optional(), policy: macPolicySchema })),
  steps: z.array(z.string()),
  refusal: z.string().optional(),
});
export type ReplicatePlanReply = z.infer<typeof replicatePlanReplySchema>;

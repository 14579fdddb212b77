import { z } from "zod";
import { commandEnvelope } from "./envelope.js";
import { domainNameSchema } from "./domain-name.js";
import { requestPathSchema } from "./restore.js";

/*
 * Replication (`vmbs.svc.restore.<host>.replicate` and `.replicate-plan`): a persistent domain of the host's
 * LIBVIRT_URI copied as a new domain onto a libvirt connection (this one or another host's, `qemu+ssh://…`).
 * Its events are the restore service's (`vmbs.evt.restore.<host>.*`) with `operation: "replicate"`.
 */

/** Per NIC: keep the source's MAC, or a random 52:54:00 one unused on the target. */
export const macPolicySchema = z.enum(["keep", "random"]);
export type MacPolicy = z.infer<typeof macPolicySchema>;

/** A replication target as {@link parseLibvirtTarget} accepts it: this machine's libvirt, or another host's over ssh. */
export type LibvirtTarget =
  | { kind: "local" }
  | { kind: "ssh"; host: string; user?: string; port?: number; keyFile?: string; knownHosts?: string; noVerify: boolean };

// Opening a libvirt URI runs programs as the service (root): `qemu+ext://?command=`, the ssh transport's
// `command=`/`netcat=`/`socket=`. Only these shapes are ever opened. User and host begin with a letter or digit,
// so ssh never reads them as options; no `%`, so nothing decodes into something else.
const SSH_URI = /^qemu\+ssh:\/\/(?:([A-Za-z0-9_][A-Za-z0-9._-]*)@)?([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?\/system(?:\?(.*))?$/;
const FILE_PARAM = /^\/[A-Za-z0-9._/+@-]*$/;

/**
 * The target of a libvirt URI a request may name: `qemu:///system`, `qemu:///session`, or
 * `qemu+ssh://[user@]host[:port]/system` with at most the parameters `keyfile`, `known_hosts` (absolute paths)
 * and `no_verify` (0 or 1). Anything else is refused with the reason.
 */
export function parseLibvirtTarget(uri: string): { ok: true; target: LibvirtTarget } | { ok: false; reason: string } {
  if (uri === "qemu:///system" || uri === "qemu:///session") return { ok: true, target: { kind: "local" } };
  const m = SSH_URI.exec(uri);
  if (!m) return { ok: false, reason: "must be qemu:///system, qemu:///session or qemu+ssh://[user@]host[:port]/system" };
  const [, user, host, port, query] = m;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65_535)) return { ok: false, reason: `port ${port} is out of range` };
  const params = new Map<string, string>();
  for (const pair of query === undefined ? [] : query.split("&")) {
    const [key = "", value = "", ...rest] = pair.split("=");
    const valid = rest.length === 0 && !params.has(key) && (key === "no_verify" ? value === "0" || value === "1" : (key === "keyfile" || key === "known_hosts") && FILE_PARAM.test(value));
    if (!valid) return { ok: false, reason: `URI parameter ${JSON.stringify(pair)} is not allowed (only keyfile=/path, known_hosts=/path, no_verify=0|1, once each)` };
    params.set(key, value);
  }
  const keyFile = params.get("keyfile");
  const knownHosts = params.get("known_hosts");
  return {
    ok: true,
    target: {
      kind: "ssh",
      host: host!,
      ...(user ? { user } : {}),
      ...(port ? { port: Number(port) } : {}),
      ...(keyFile ? { keyFile } : {}),
      ...(knownHosts ? { knownHosts } : {}),
      noVerify: params.get("no_verify") === "1",
    },
  };
}

/** A libvirt connection URI a request may name, e.g. `qemu+ssh://root@hv2:22/system?keyfile=/k&no_verify=1`. */
const libvirtUriSchema = z.string().superRefine((uri, ctx) => {
  const r = parseLibvirtTarget(uri);
  if (!r.ok) ctx.addIssue({ code: "custom", message: r.reason });
});

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
    /**
     * Folder of the copied images on the target; default the folder of each source image. Must be a storage pool
     * path or the folder of an image of a domain defined on the target.
     */
    diskDir: requestPathSchema.optional(),
    /** Copy the disks (default true); false keeps the source's image paths (e.g. shared storage). */
    copyDisks: z.boolean().optional(),
    /** Consent to shut a running source down for a consistent copy (VM_WAIT_TIME); it is started again afterwards. */
    consent: z.boolean().optional(),
    ...commandEnvelope,
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

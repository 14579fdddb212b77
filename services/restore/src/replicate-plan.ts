import { basename, dirname, extname, join } from "node:path";
import { VmbsError, parseLibvirtTarget, type LibvirtTarget, type MacPolicy, type ReplicatePlanReply } from "@vmbs/contracts";
import { sshOptionsWithHostKeyPolicy } from "@vmbs/config";
import type { XmlDisk } from "./domain-xml.js";

/** How files reach a target connection: this machine's file system, or ssh to the target's host. */
export type TargetTransport = LibvirtTarget;

/**
 * The transport of a target URI a request named, refused unless it is one of the few shapes
 * {@link parseLibvirtTarget} allows: this runs before libvirt opens the URI, since opening it can run programs.
 */
export function targetTransport(uri: string): TargetTransport {
  const r = parseLibvirtTarget(uri);
  if (!r.ok) throw new ReplicateRefusedError(`target ${JSON.stringify(uri)} refused: ${r.reason}`);
  return r.target;
}

/**
 * ssh options for a target: the URI's own settings first (ssh keeps the first value of an option), then
 * SSH_OPTIONS with the host key policy every ssh of ours applies (a changed key is refused; the seed's
 * StrictHostKeyChecking=no records new keys only) unless the URI says `no_verify`; never a prompt, since a service
 * has nobody to answer it.
 */
export function targetSshOptions(t: Extract<TargetTransport, { kind: "ssh" }>, sshOptions: readonly string[]): string[] {
  return [
    ...(t.port ? ["-p", String(t.port)] : []),
    ...(t.user ? ["-l", t.user] : []),
    ...(t.keyFile ? ["-i", t.keyFile] : []),
    ...(t.noVerify ? ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"] : t.knownHosts ? ["-o", `UserKnownHostsFile=${t.knownHosts}`] : []),
    "-o",
    "BatchMode=yes",
    ...(t.noVerify ? sshOptions : sshOptionsWithHostKeyPolicy(sshOptions)),
  ];
}

/** Refused before anything changed (the plan's `refusal`). */
export class ReplicateRefusedError extends VmbsError {
  constructor(message: string) {
    super("refused", message);
  }
}

/**
 * The MAC of each NIC: kept, or random in 52:54:00 and unused on the target (nor by an earlier NIC of the copy).
 * A NIC without a MAC gets a random one either way.
 */
export function pickMacs(originals: readonly (string | undefined)[], policy: MacPolicy | readonly MacPolicy[], taken: ReadonlySet<string>, random: () => string): string[] {
  if (typeof policy !== "string" && policy.length !== originals.length)
    throw new ReplicateRefusedError(`${policy.length} MAC policies for ${originals.length} network interfaces`);
  const used = new Set(taken);
  return originals.map((mac, i) => {
    const p = typeof policy === "string" ? policy : policy[i]!;
    if (p === "keep" && mac) return mac;
    for (let tries = 0; tries < 1000; tries++) {
      const candidate = random().toLowerCase();
      if (!used.has(candidate)) {
        used.add(candidate);
        return candidate;
      }
    }
    throw new Error("no unused MAC address found in 1000 tries");
  });
}

/** The copy's image: `<new name>.<target dev><extension of the source, else .<format>>` in `dir`. */
export function copyImagePath(dir: string, name: string, disk: XmlDisk, format: string): string {
  const ext = extname(basename(disk.file));
  return join(dir, `${name}.${disk.target}${ext && ext.length <= 8 ? ext : `.${format}`}`);
}

/** The copy's UEFI variable store: `<new name>_VARS.fd` next to the source's (libvirt's nvram folder). */
export function copyNvramPath(sourceNvram: string, name: string): string {
  return join(dirname(sourceNvram), `${name}_VARS.fd`);
}

export interface PlanInput {
  domain: string;
  as: string;
  to: string;
  state: string;
  copyDisks: boolean;
  consent: boolean;
  transport: TargetTransport;
  disks: { disk: XmlDisk; format: string; image: string }[];
  otherDisks: string[];
  nics: { mac?: string; policy: MacPolicy }[];
  nvram?: { source: string; copy: string };
  /** Why the target refuses the name or paths (a domain of that name, existing files), if it does. */
  conflicts: string[];
}

/** The steps of a replication and why it would be refused, if it would. */
export function planReplication(p: PlanInput): Pick<ReplicatePlanReply, "steps" | "refusal"> {
  const running = p.state !== "shut off";
  const refusals = [
    ...p.conflicts,
    ...(p.copyDisks && p.otherDisks.length > 0 ? [`disks ${p.otherDisks.join(", ")} are not image files and cannot be copied; replicate without copying disks`] : []),
    ...(p.copyDisks && running && !p.consent ? [`${p.domain} is ${p.state}; a consistent copy needs it shut down for the copy (consent), or shut off`] : []),
  ];
  const where = p.transport.kind === "ssh" ? ` on ${p.transport.host} (over ssh)` : "";
  const steps = [
    ...(p.copyDisks && running ? [`shut down ${p.domain} (within VM_WAIT_TIME); it is started again afterwards, whatever happens`] : []),
    ...(p.copyDisks ? p.disks.map((d) => `copy ${d.disk.file} as ${d.format} to ${d.image}${where}`) : p.disks.map((d) => `keep ${d.image} (not copied)`)),
    ...(p.nvram ? [`copy the UEFI variables ${p.nvram.source} to ${p.nvram.copy}${where}`] : []),
    `define ${p.as} on ${p.to} with a new UUID, MACs ${p.nics.map((n) => n.policy).join(", ") || "(no NIC)"}; it is not started`,
  ];
  return { steps, ...(refusals.length > 0 ? { refusal: refusals.join("; ") } : {}) };
}

import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import type { ReplicatePlanReply, ReplicateReply, ReplicateRequest } from "@vmbs/contracts";
import { createLibvirt, imageFormat, imageVirtualSize, waitForDomainState, type Libvirt } from "@vmbs/virt";
import { domainXmlDisks, domainXmlMacs, domainXmlNvram, domainXmlOtherDisks, randomMac, rewriteAsNewDomain } from "./domain-xml.js";
import { libvirtImageFolders, PathRefusedError } from "./confine.js";
import { copyImagePath, copyNvramPath, pickMacs, planReplication, ReplicateRefusedError, targetTransport, type TargetTransport } from "./replicate-plan.js";
import { createTargetFiles, type TargetFiles } from "./target-files.js";
import type { FollowProgress } from "./follow-progress.js";

export interface ReplicateDeps {
  /** This host's connection (LIBVIRT_URI), where the source is. */
  libvirt: Libvirt;
  libvirtUri: string;
  /** SSH_OPTIONS, added to what a `qemu+ssh://` target URI says. */
  sshOptions: readonly string[];
  /** Seconds a consented shutdown of the source may take (VM_WAIT_TIME). */
  waitTimeSec: number;
  /** Aborts a copy (the service stops); the partial files are removed and the source started again. */
  signal: AbortSignal;
  /** Announces a step; destructive steps are announced before they happen. */
  progress(step: string): Promise<void>;
  /** Publishes how far the image copies are while they run. */
  follow?: FollowProgress;
  /** Limit of one image copy; default 12 h. */
  copyTimeoutMs?: number;
  /** Opens another libvirt connection (the target); default the libvirt bridge. */
  openLibvirt?(uri: string): Libvirt;
}

/** Everything a replication decided before touching anything. */
interface Resolved {
  plan: ReplicatePlanReply;
  xml: string;
  macs: string[];
  nvram?: { source: string; copy: string; exists: boolean };
}

/** What a replication would do and whether it would be refused (read-only). */
export async function planReplicate(deps: ReplicateDeps, req: ReplicateRequest): Promise<ReplicatePlanReply> {
  return withTarget(deps, req, async (target) => (await resolve(deps, req, target)).plan);
}

/**
 * Copies `req.domain` as the new domain `req.as` onto the target connection: disks in their own format (unless
 * `copyDisks` is false), UEFI variables as `<as>_VARS.fd`, new UUID, MACs per policy; defined there, never
 * started. A running source is shut down for the copy only with consent, and started again whatever happens.
 */
export async function replicateDomain(deps: ReplicateDeps, req: ReplicateRequest, runId: string, onStarted: () => Promise<void>): Promise<ReplicateReply> {
  return withTarget(deps, req, async (target) => {
    const r = await resolve(deps, req, target);
    if (r.plan.refusal) throw new ReplicateRefusedError(r.plan.refusal);
    await onStarted();
    const copy = req.copyDisks !== false;
    const files = createTargetFiles(target.transport, { sshOptions: deps.sshOptions, runId, copyTimeoutMs: deps.copyTimeoutMs ?? 12 * 3600_000 });
    const created: string[] = [];
    let shutDown = false;
    try {
      if (copy && r.plan.state !== "shut off") {
        await deps.progress(`shutdown ${req.domain} (was ${r.plan.state}), waiting up to ${deps.waitTimeSec} s`);
        shutDown = true;
        await deps.libvirt.shutdown(req.domain);
        if (!(await waitForDomainState(deps.libvirt, req.domain, "shut off", { timeoutMs: deps.waitTimeSec * 1000, tolerateErrors: true })))
          throw new ReplicateRefusedError(`${req.domain} did not shut down within VM_WAIT_TIME (${deps.waitTimeSec} s); nothing was copied`);
      }
      if (copy) {
        // The bar's figures: the disks' virtual sizes, gone through as qemu-img convert reports it (-p).
        const sizes = deps.follow ? await Promise.all(r.plan.disks.map((d) => imageVirtualSize(d.source))) : [];
        const bytesTotal = sizes.reduce((a, b) => a + b, 0);
        let bytesDone = 0;
        const stopFollowing = deps.follow?.(() => ({ bytesDone: Math.round(bytesDone), bytesTotal }));
        try {
          for (const [i, d] of r.plan.disks.entries()) {
            deps.signal.throwIfAborted();
            await deps.progress(`copy ${d.source} as ${d.format} to ${d.image}`);
            const before = bytesDone;
            await files.copyImage(d.source, d.format, d.image, deps.signal, (fraction) => (bytesDone = before + fraction * (sizes[i] ?? 0)));
            bytesDone = before + (sizes[i] ?? 0);
            created.push(d.image);
          }
        } finally {
          stopFollowing?.();
        }
      }
      if (r.nvram?.exists) {
        await deps.progress(`copy the UEFI variables ${r.nvram.source} to ${r.nvram.copy}`);
        await files.copyFile(r.nvram.source, r.nvram.copy, deps.signal);
        created.push(r.nvram.copy);
      }
      const edited = rewriteAsNewDomain(r.xml, {
        name: req.as,
        images: new Map(r.plan.disks.map((d) => [d.target, d.image])),
        ...(r.nvram ? { nvram: r.nvram.copy } : {}),
        macs: r.macs,
      });
      deps.signal.throwIfAborted();
      await deps.progress(`define ${req.as} on ${r.plan.to} (uuid ${edited.uuid})`);
      await target.libvirt.defineXml(edited.xml);
      return { domain: req.domain, target: req.as, to: r.plan.to, uuid: edited.uuid, macs: edited.macs, images: r.plan.disks.map((d) => d.image), ...(r.nvram ? { nvram: r.nvram.copy } : {}), restarted: shutDown };
    } catch (err) {
      if (created.length > 0) {
        await deps.progress(`remove the copies made: ${created.join(", ")}`).catch(() => undefined);
        await files.remove(created).catch(() => undefined);
      }
      throw err;
    } finally {
      // Started again whatever happened: the copy is ours to lose, the source is not.
      if (shutDown) await restartSource(deps, req.domain);
    }
  });
}

async function restartSource(deps: ReplicateDeps, domain: string): Promise<void> {
  if ((await deps.libvirt.domainState(domain).catch(() => undefined)) !== "shut off") return;
  await deps.progress(`start ${domain} again`).catch(() => undefined);
  await deps.libvirt.start(domain);
}

/** The target connection of a request, its URI and how files reach it. */
interface Target {
  libvirt: Libvirt;
  uri: string;
  transport: TargetTransport;
}

/**
 * Runs `work` on the target connection. This host's own LIBVIRT_URI is the connection already open; any other URI
 * is checked before libvirt opens it (an opened URI can run programs as root) and closed afterwards.
 */
async function withTarget<T>(deps: ReplicateDeps, req: ReplicateRequest, work: (target: Target) => Promise<T>): Promise<T> {
  const uri = req.to ?? deps.libvirtUri;
  if (uri === deps.libvirtUri) return work({ libvirt: deps.libvirt, uri, transport: { kind: "local" } });
  const transport = targetTransport(uri);
  const libvirt = (deps.openLibvirt ?? createLibvirt)(uri);
  try {
    return await work({ libvirt, uri, transport });
  } finally {
    await libvirt.close();
  }
}

async function resolve(deps: ReplicateDeps, req: ReplicateRequest, target: Target): Promise<Resolved> {
  const to = target.uri;
  const info = await deps.libvirt.domainInfo(req.domain);
  if (!info) throw new ReplicateRefusedError(`domain ${JSON.stringify(req.domain)} does not exist on ${deps.libvirtUri}`);
  if (!info.persistent) throw new ReplicateRefusedError(`${req.domain} is not persistent (defined); only defined domains are replicated`);
  const copyDisks = req.copyDisks !== false;
  const transport = target.transport;
  // Only `existing` and `realPaths` are asked of these target files: nothing is copied while resolving.
  const files = createTargetFiles(transport, { sshOptions: deps.sshOptions, runId: "plan", copyTimeoutMs: 0 });
  const xml = await deps.libvirt.domainXml(req.domain);
  const sourceDisks = domainXmlDisks(xml);
  const folders = copyDisks ? await copyFolders(target, files, req.diskDir ?? sourceDisks.map((d) => dirname(d.file))) : new Map<string, string>();
  const disks = await Promise.all(
    sourceDisks.map(async (disk) => {
      const format = await imageFormat(disk.file);
      return { disk, format, image: copyDisks ? copyImagePath(folders.get(req.diskDir ?? dirname(disk.file))!, req.as, disk, format) : disk.file };
    }),
  );
  const sourceNvram = domainXmlNvram(xml);
  const nvram = sourceNvram ? { source: sourceNvram, copy: copyNvramPath(sourceNvram, req.as), exists: await stat(sourceNvram).then(() => true, () => false) } : undefined;
  const originals = domainXmlMacs(xml);
  const policy = req.mac ?? "random";
  const macs = pickMacs(originals, policy, new Set(await target.libvirt.macAddresses()), randomMac);
  const conflicts: string[] = [];
  if (await target.libvirt.domainInfo(req.as)) conflicts.push(`a domain named ${JSON.stringify(req.as)} exists already on ${to}`);
  const newFiles = [...(copyDisks ? disks.map((d) => d.image) : []), ...(nvram?.exists ? [nvram.copy] : [])];
  for (const p of await files.existing(newFiles)) conflicts.push(`${p} exists already on the target (never overwritten)`);
  const nics = originals.map((mac, i) => ({ ...(mac ? { mac } : {}), policy: typeof policy === "string" ? policy : policy[i]! }));
  const decided = planReplication({
    domain: req.domain,
    as: req.as,
    to,
    state: info.state,
    copyDisks,
    consent: req.consent === true,
    transport,
    disks,
    otherDisks: domainXmlOtherDisks(xml),
    nics,
    ...(nvram?.exists ? { nvram } : {}),
    conflicts,
  });
  const plan: ReplicatePlanReply = {
    domain: req.domain,
    target: req.as,
    to,
    state: info.state,
    disks: disks.map((d) => ({ target: d.disk.target, source: d.disk.file, image: d.image, format: d.format })),
    nics,
    ...decided,
  };
  return { plan, xml, macs, ...(nvram ? { nvram } : {}) };
}

/**
 * The real folder on the target of each folder the copies would go to (`diskDir`, else each source image's
 * folder), refused unless it is one of the target's image folders (its storage pools, its domains' disk folders).
 */
async function copyFolders(target: Target, files: TargetFiles, wanted: string | string[]): Promise<Map<string, string>> {
  const asked = typeof wanted === "string" ? [wanted] : [...new Set(wanted)];
  const allowed = new Set(await files.realPaths(await libvirtImageFolders(target.libvirt)));
  const real = await files.realPaths(asked);
  const refused = asked.filter((_, i) => !allowed.has(real[i]!));
  if (refused.length > 0)
    throw new PathRefusedError(`${refused.map((f) => JSON.stringify(f)).join(", ")} ${refused.length > 1 ? "are" : "is"} not a storage pool path or image folder of a domain on ${target.uri}; name one as diskDir`);
  return new Map(asked.map((f, i) => [f, real[i]!]));
}

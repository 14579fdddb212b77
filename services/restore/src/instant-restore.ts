import { constants } from "node:fs";
import { chmod, copyFile, mkdir, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import type { InstantAbandonReply, InstantEndRequest, InstantFinishReply, InstantRestoreReply, InstantRestoreRequest } from "@vmbs/contracts";
import { exportPid, exportReadBytes, imageVirtualSize, serveChainExport, stopChainExport, type Libvirt } from "@vmbs/virt";
import { setFolder } from "./backup-sets.js";
import { domainXmlDisks, domainXmlHasTpmEmulator, rewriteAsNewDomain, stripUnrestorable, withDiskSources, type DiskSource } from "./domain-xml.js";
import type { InstantLeases } from "./instant-leases.js";
import { chainFilesOfDisk, planInstantLayout, type InstantDisk } from "./instant-plan.js";
import type { InstantRecord, InstantRecords } from "./instant-record.js";
import { exists, leaveOutStep, newDomainFiles, newImageFolder, newTpmStep, resolveSet, RestoreRefusedError, type ResolvedRestore } from "./run-restore.js";
import { savedNvramCopy } from "./saved-nvram.js";
import { placeNewTpmState, savedTpmStateCopy } from "./saved-tpm-state.js";

/*
 * Instant recovery: a new domain runs at once on qcow2 overlays whose backing files are the backup chain, served
 * read-only by nbdkit (chain-export.ts); its writes go to the overlays. `finishInstant` copies each disk onto its
 * final image while the domain runs (libvirt blockcopy, then pivot) and drops overlays, exports and lease;
 * `abandonInstant` removes the domain and everything made for it. Each step that makes something is preceded by
 * the record (instant-record.ts) that lets a restarted service finish or undo it (instant-recovery.ts).
 */

export interface InstantDeps {
  libvirt: Libvirt;
  libvirtUri: string;
  /** LOCAL_BACKUP_PATH, real path: only its sets are served (their lease guards them). */
  backupRoot: string;
  records: InstantRecords;
  leases: InstantLeases;
  /** How long a start waits for a busy chain (a running backup). */
  chainWaitMs: number;
  /** Aborted when the service stops: a copy is abandoned (the domain stays on its overlays). */
  signal: AbortSignal;
  /** Announces a step; with byte counts for the copy's progress. */
  progress(step: string, bytes?: { done: number; total: number }): Promise<void>;
}

/** How often the copy's jobs are asked, and its progress announced at most. */
const POLL_MS = 250;
const PROGRESS_EVERY_MS = 2_000;
/** A copy whose jobs move no byte for this long has stalled. */
const STALL_MS = 10 * 60_000;
const QEMU_IMG_TIMEOUT_MS = 120_000;

/**
 * A qcow2 overlay's backing file naming the export, for qemu-img and a person reading `qemu-img info` (the domain
 * XML spells its backing store out, so libvirt reads nothing from it). QEMU's `json:` form takes any path, where an
 * `nbd+unix:///?socket=` URL would need a path without spaces, `&` or `%`.
 */
const nbdBacking = (socket: string): string => `json:${JSON.stringify({ file: { driver: "nbd", server: { type: "unix", path: socket } } })}`;

/** Serves checkpoint `req.checkpoint` of a set of `req.domain` as the running domain `req.as`. */
export async function startInstant(deps: InstantDeps, req: InstantRestoreRequest, onResolved: (r: ResolvedRestore) => Promise<void>): Promise<InstantRestoreReply> {
  const t0 = Date.now();
  const name = req.as;
  if (await deps.libvirt.domainInfo(name)) throw new RestoreRefusedError(`a domain named ${JSON.stringify(name)} exists already`);
  if (await deps.records.get(name)) throw new RestoreRefusedError(`an instant VM named ${JSON.stringify(name)} is recorded already; finish or abandon it`);
  const setName = req.set ?? req.domain;
  const setDir = setFolder(deps.backupRoot, req.domain, setName);
  const { point, xml, disks, folder, points } = await resolveSet(setDir, setName, req);
  const targetDir = await newImageFolder(deps, req, disks);
  const layout = planInstantLayout(targetDir, name, new Map(disks.map((d) => [d.target, chainFilesOfDisk(folder, points, point, d.target)])));
  const { nvram } = newDomainFiles(targetDir, name, xml);
  for (const path of [layout.workDir, ...layout.disks.map((d) => d.image), ...(nvram ? [nvram] : [])])
    if (await exists(path)) throw new RestoreRefusedError(`${path} exists already, never replaced`);

  await deps.leases.hold(name, req.domain, deps.chainWaitMs);
  let tpmFolder: string | undefined;
  const record: InstantRecord = {
    name, source: req.domain, set: setName, checkpoint: point.name, setDir, targetDir, workDir: layout.workDir, disks: layout.disks,
    phase: "starting", since: new Date().toISOString(), ...(req.requestId ? { requestId: req.requestId } : {}),
  };
  try {
    await deps.records.save(record);
    await onResolved({ set: setName, checkpoint: point.name });
    // Not recursive: the folder is new, so everything in it is ours to remove.
    await mkdir(layout.workDir, { mode: 0o755 });
    await chmod(layout.workDir, 0o755);
    for (const d of layout.disks) {
      await deps.progress(`serve ${d.target} of ${setName} at ${point.name} read-only from ${d.files.length} chain files (nbdkit on ${d.socket})`);
      await serveChainExport(d);
    }
    for (const d of layout.disks) {
      await deps.progress(`create overlay ${d.overlay} over the export of ${d.target}`);
      await qemuImg(["create", "-q", "-f", "qcow2", "-F", "raw", "-b", nbdBacking(d.socket), d.overlay]);
      // Guest data: root only; libvirt's dynamic ownership hands it to QEMU's user while the domain runs.
      await chmod(d.overlay, 0o600);
    }
    const { xml: kept, stripped } = stripUnrestorable(xml);
    if (stripped.length > 0) await deps.progress(leaveOutStep(stripped));
    const edited = rewriteAsNewDomain(kept, { name, images: new Map(layout.disks.map((d) => [d.target, d.overlay])), ...(nvram ? { nvram } : {}) });
    const sources = new Map<string, DiskSource>(layout.disks.map((d) => [d.target, { file: d.overlay, nbdSocket: d.socket }]));
    record.uuid = edited.uuid;
    await deps.records.save(record);
    const savedNvram = nvram && (await savedNvramCopy(setDir, xml, point.name));
    if (nvram && savedNvram) {
      await deps.progress(`copy the UEFI variables saved at ${point.name} to ${nvram}`);
      record.nvram = nvram;
      await deps.records.save(record);
      await copyFile(savedNvram, nvram, constants.COPYFILE_EXCL);
      await chmod(nvram, 0o600);
    }
    const tpm = domainXmlHasTpmEmulator(kept) ? await savedTpmStateCopy(setDir, point.name) : undefined;
    if (tpm) {
      await deps.progress(newTpmStep(point.name));
      tpmFolder = (await placeNewTpmState(tpm, edited.uuid)).folder;
    }
    await deps.progress(`define ${name} (uuid ${edited.uuid}) on the overlays`);
    await deps.libvirt.defineXml(withDiskSources(edited.xml, sources));
    await deps.progress(`start ${name}`);
    await deps.libvirt.start(name);
    record.phase = "serving";
    await deps.records.save(record);
    return {
      domain: name, source: req.domain, set: setName, checkpoint: point.name,
      disks: layout.disks.map((d) => ({ target: d.target, overlay: d.overlay, socket: d.socket, image: d.image })),
      ms: Date.now() - t0, ...(stripped.length > 0 ? { stripped } : {}),
    };
  } catch (err) {
    await removeInstantVm(deps, record).catch(() => undefined);
    // Undefining takes the TPM state with it; a start that failed before the define leaves it to us.
    if (tpmFolder && !(await deps.libvirt.domainInfo(name))) await rm(tpmFolder, { recursive: true, force: true });
    await deps.records.remove(name);
    await deps.leases.release(name).catch(() => undefined);
    throw err;
  }
}

/** Copies each disk of the running instant VM onto its final image, pivots, and drops exports, overlays and lease. */
export async function finishInstant(deps: InstantDeps, req: InstantEndRequest): Promise<InstantFinishReply> {
  const t0 = Date.now();
  const record = await recordOf(deps, req.domain);
  const name = record.name;
  if (record.phase === "starting") throw new RestoreRefusedError(`${name} is still being started`);
  const state = await deps.libvirt.domainState(name);
  if (state !== "running" && state !== "paused") throw new RestoreRefusedError(`${name} is ${state}: its disks are copied while it runs; start it first (virsh start), or abandon it`);
  const todo = await disksOnOverlays(deps.libvirt, record);
  for (const d of todo) if (await exists(d.image)) throw new RestoreRefusedError(`${d.image} exists already, never replaced`);

  record.phase = "finishing";
  await deps.records.save(record);
  const pivoted = new Set<string>();
  try {
    for (const d of todo) {
      await qemuImg(["create", "-q", "-f", "qcow2", d.image, String(await imageVirtualSize(d.overlay, { unlocked: true }))]);
      await chmod(d.image, 0o600);
    }
    await deps.progress(`copy ${todo.map((d) => `${d.target} onto ${d.image}`).join(", ")} while ${name} runs (blockcopy, then pivot)`);
    for (const d of todo) await deps.libvirt.blockCopy(name, d.target, d.image);
    await copyAndPivot(deps, name, todo, pivoted);
  } catch (err) {
    // Back onto the overlays: jobs not pivoted are dropped with their images; pivoted disks stay on theirs.
    for (const d of todo.filter((x) => !pivoted.has(x.target))) {
      if (await deps.libvirt.blockJob(name, d.target).catch(() => undefined)) await deps.libvirt.blockJobAbort(name, d.target, false).catch(() => undefined);
      await rm(d.image, { force: true });
    }
    if (pivoted.size === 0) {
      record.phase = "serving";
      await deps.records.save(record);
    }
    throw err;
  }
  const images = record.disks.map((d) => d.image);
  await settleDefinition(deps.libvirt, record);
  const chainReadBytes = await readFromChain(record.disks);
  await dropInstantServing(deps, record);
  return { domain: name, images, ms: Date.now() - t0, ...(chainReadBytes !== undefined ? { chainReadBytes } : {}) };
}

/** Stops and removes the instant VM and everything made for it; releases the chain. */
export async function abandonInstant(deps: InstantDeps, req: InstantEndRequest): Promise<InstantAbandonReply> {
  const record = await recordOf(deps, req.domain);
  await deps.progress(`stop and remove ${record.name}, its overlays, exports${record.phase === "finishing" ? " and the images of its interrupted finish" : ""}`);
  const removed = await removeInstantVm(deps, record);
  await deps.records.remove(record.name);
  await deps.leases.release(record.name);
  return { domain: record.name, removed };
}

async function recordOf(deps: InstantDeps, name: string): Promise<InstantRecord> {
  const record = await deps.records.get(name);
  if (!record) throw new RestoreRefusedError(`no instant VM named ${JSON.stringify(name)} on this host`);
  return record;
}

/**
 * The disks of the record the domain still reads from its overlays (not yet pivoted onto their images): by its
 * running definition, or by its persistent one when it does not run (libvirt writes a pivot into both).
 */
export async function disksOnOverlays(libvirt: Libvirt, record: InstantRecord, running = true): Promise<InstantDisk[]> {
  const xml = running ? await libvirt.liveXml(record.name) : await libvirt.domainXml(record.name);
  const now = new Map(domainXmlDisks(xml).map((d) => [d.target, d.file]));
  return record.disks.filter((d) => now.get(d.target) === d.overlay);
}

/** Follows the copy jobs, announcing their progress, and pivots each disk once its copy is in step. */
async function copyAndPivot(deps: InstantDeps, name: string, disks: InstantDisk[], pivoted: Set<string>): Promise<void> {
  let lastAnnounce = 0;
  let lastDone = -1;
  let lastMove = Date.now();
  while (pivoted.size < disks.length) {
    deps.signal.throwIfAborted();
    let done = 0;
    let total = 0;
    for (const d of disks) {
      if (pivoted.has(d.target)) continue;
      const job = await deps.libvirt.blockJob(name, d.target);
      if (!job) throw new Error(`the copy of ${d.target} of ${name} ended without being pivoted (did the domain stop?)`);
      done += job.cur;
      total += job.end;
      if (job.end > 0 && job.cur === job.end) {
        // QEMU may report the bytes done a moment before the job is ready to pivot: asked again on the next round.
        const ok = await deps.libvirt.blockJobAbort(name, d.target, true).then(() => true, (err: Error) => (/not ready|ready for pivot/i.test(err.message) ? false : Promise.reject(err)));
        if (ok) {
          pivoted.add(d.target);
          await deps.progress(`pivot ${d.target} of ${name} onto ${d.image}`);
        }
      }
    }
    if (done !== lastDone) [lastDone, lastMove] = [done, Date.now()];
    else if (Date.now() - lastMove > STALL_MS) throw new Error(`the copy of ${name} moved no byte for ${STALL_MS / 60_000} min`);
    if (Date.now() - lastAnnounce >= PROGRESS_EVERY_MS && pivoted.size < disks.length) {
      lastAnnounce = Date.now();
      await deps.progress(`copying ${name}: ${pct(done, total)}`, { done, total });
    }
    if (pivoted.size < disks.length) await sleep(POLL_MS);
  }
}

const pct = (done: number, total: number): string => `${(done / 1048576).toFixed(0)} of ${(total / 1048576).toFixed(0)} MiB (${total > 0 ? Math.floor((100 * done) / total) : 0} %)`;

/** Makes the persistent definition name the final images too (libvirt updates it on pivot; checked, not assumed). */
export async function settleDefinition(libvirt: Libvirt, record: InstantRecord, running = true): Promise<void> {
  if (running) {
    const live = new Map(domainXmlDisks(await libvirt.liveXml(record.name)).map((d) => [d.target, d.file]));
    const astray = record.disks.filter((d) => live.get(d.target) !== d.image);
    if (astray.length > 0) throw new Error(`${record.name} does not run on ${astray.map((d) => d.image).join(", ")} after the pivot`);
  }
  const persistent = await libvirt.domainXml(record.name);
  const saved = new Map(domainXmlDisks(persistent).map((d) => [d.target, d.file]));
  if (record.disks.some((d) => saved.get(d.target) !== d.image) || persistent.includes("protocol='nbd'") || persistent.includes('protocol="nbd"'))
    await libvirt.defineXml(withDiskSources(persistent, new Map(record.disks.map((d) => [d.target, { file: d.image }]))));
}

/** Bytes the exports of these disks read from the chain, when they still run. */
async function readFromChain(disks: InstantDisk[]): Promise<number | undefined> {
  let sum = 0;
  for (const d of disks) {
    const pid = await exportPid(d);
    const read = pid === undefined ? undefined : await exportReadBytes(pid);
    if (read === undefined) return undefined;
    sum += read;
  }
  return sum;
}

/** After the pivot: the exports stop, the overlays go, the record and the lease are dropped. */
export async function dropInstantServing(deps: Pick<InstantDeps, "records" | "leases" | "progress">, record: InstantRecord): Promise<void> {
  await deps.progress(`stop the exports of ${record.name}, remove its overlays (${record.workDir})`);
  for (const d of record.disks) await stopChainExport(d);
  await rm(record.workDir, { recursive: true, force: true });
  await deps.records.remove(record.name);
  await deps.leases.release(record.name);
}

/**
 * Removes the instant VM of `record` and what was made for it: the domain (only the one with the recorded UUID),
 * exports, overlays, images of an interrupted finish, the UEFI variables copy. Returns the paths removed.
 */
export async function removeInstantVm(deps: Pick<InstantDeps, "libvirt">, record: InstantRecord): Promise<string[]> {
  const info = await deps.libvirt.domainInfo(record.name);
  if (info && record.uuid && (await domainUuid(deps.libvirt, record.name)) === record.uuid) {
    if (info.state !== "shut off") await deps.libvirt.destroy(record.name);
    await deps.libvirt.undefine(record.name);
  }
  for (const d of record.disks) await stopChainExport(d);
  const removed: string[] = [];
  const made = [record.workDir, ...(record.phase === "finishing" ? record.disks.map((d) => d.image) : []), ...(record.nvram ? [record.nvram] : [])];
  for (const path of made)
    if (await exists(path)) {
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    }
  return removed;
}

async function domainUuid(libvirt: Libvirt, name: string): Promise<string | undefined> {
  return /<uuid>([^<]+)<\/uuid>/.exec(await libvirt.domainXml(name))?.[1];
}

async function qemuImg(args: string[]): Promise<void> {
  const r = await execa("qemu-img", args, { reject: false, stdin: "ignore", timeout: QEMU_IMG_TIMEOUT_MS });
  if (r.failed) throw new Error(`qemu-img ${args[0]} failed: ${String(r.stderr || r.message).trim()}`);
}

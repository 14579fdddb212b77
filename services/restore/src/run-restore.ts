import { constants } from "node:fs";
import { chmod, copyFile, link, lstat, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { archiveChainFolder, chainEndAfterRestore, readChainFolder, type ChainFolder } from "@vmbs/chain";
import type { RestorePlanReply, RestorePoint, RestoreRunReply, RestoreRunRequest } from "@vmbs/contracts";
import { runEngineRestore, waitForDomainState, type DomainInfo, type Libvirt } from "@vmbs/virt";
import { BackupSetError, bytesToRestore, listRestorePoints, mtimeOrderProblem, setFolder } from "./backup-sets.js";
import { allocatedBytes, type FollowProgress } from "./follow-progress.js";
import { confinePath, isInside, libvirtImageFolders, realPathOf } from "./confine.js";
import { domainXmlDisks, domainXmlHasTpmEmulator, domainXmlNvram, rewriteAsNewDomain, stripUnrestorable, type XmlDisk } from "./domain-xml.js";
import { inPlaceFileStep, type InPlaceFile } from "./in-place-file.js";
import { VmbsError } from "@vmbs/contracts";
import { planInPlaceNvram, savedNvramCopy } from "./saved-nvram.js";
import { placeNewTpmState, planInPlaceTpm, savedTpmStateCopy } from "./saved-tpm-state.js";

/** A restore refused before anything changed (bad checkpoint, running domain without consent, taken name...). */
export class RestoreRefusedError extends VmbsError {
  constructor(message: string) {
    super("refused", message);
  }
}

export interface RestoreDeps {
  libvirt: Libvirt;
  libvirtUri: string;
  /** LOCAL_BACKUP_PATH as a real path, so that a `from` naming it in other words is known as the root. */
  backupRoot: string;
  /** Seconds a consented shutdown may take (VM_WAIT_TIME). */
  waitTimeSec: number;
  timeZone?: string;
  /** Aborts a running engine (the service stops); the staging folder is removed, the originals stay. */
  signal: AbortSignal;
  /** Runs `work` holding the chain lease of `domain` (only for sets under the backup root). */
  withChain<T>(domain: string, work: (signal: AbortSignal) => Promise<T>): Promise<T>;
  /** Announces a step; destructive steps are announced before they happen. */
  progress(step: string): Promise<void>;
  /** Publishes how far the engine is while it runs. */
  follow?: FollowProgress;
  engineTimeoutMs?: number;
}

/** What a run resolved before touching anything, for the started event. */
export interface ResolvedRestore {
  set: string;
  checkpoint: string;
}

/**
 * Restores one set of `req.domain` up to a checkpoint. New domain: images under `targetDir` named
 * `<new name>.<target>.qcow2`, XML rewritten (name, UUID, MACs, disks, nvram) and defined. In place: the
 * domain must be shut off (or shut down with consent); the images are restored into a staging folder first and
 * only then swapped with the originals (and the nvram and TPM state files with the checkpoint's copies), which are
 * kept aside until every file is in place.
 */
export async function restoreDomain(deps: RestoreDeps, req: RestoreRunRequest, runId: string, onResolved: (r: ResolvedRestore) => Promise<void>): Promise<RestoreRunReply> {
  const root = await setsRoot(deps.backupRoot, req.from);
  const setName = req.set ?? req.domain;
  const dir = setFolder(root, req.domain, setName);
  const guarded = root === deps.backupRoot
    ? <T>(d: string, work: (s: AbortSignal) => Promise<T>) => deps.withChain(d, (leaseLost) => work(AbortSignal.any([leaseLost, deps.signal])))
    : <T>(_d: string, work: (s: AbortSignal) => Promise<T>) => work(deps.signal);

  if (!req.inPlace && (await deps.libvirt.domainInfo(req.as!))) throw new RestoreRefusedError(`a domain named ${JSON.stringify(req.as)} exists already`);

  const restored = await guarded(req.domain, async (signal) => {
    const { point, xml, disks, bytesToRead } = await resolveSet(dir, setName, req);
    // Only a request that can be carried out shuts a domain down.
    if (req.inPlace) await prepareInPlace(deps, req);
    await onResolved({ set: setName, checkpoint: point.name });

    const targetDir = req.inPlace ? dirname((await currentImages(deps, req.domain, disks))[0]!.file) : await newImageFolder(deps, req, disks);
    const staging = join(targetDir, `.vmbs-restore-${runId}`);
    await rm(staging, { recursive: true, force: true });
    try {
      await deps.progress(`virtnbdrestore ${setName} until ${point.name}${req.disk ? ` disk ${req.disk}` : ""} into ${staging}`);
      // What the engine has written so far: the allocated size of its new images, one stat each per tick.
      const stopFollowing = deps.follow?.(async () => {
        const bytesDone = await allocatedBytes(staging);
        return { bytesDone, bytesTotal: Math.max(bytesToRead, bytesDone) };
      });
      const { images } = await runEngineRestore({
        inputDir: dir,
        outputDir: staging,
        untilCheckpoint: point.name,
        ...(req.disk ? { disk: req.disk } : {}),
        signal,
        ...(deps.engineTimeoutMs ? { timeoutMs: deps.engineTimeoutMs } : {}),
      }).finally(() => stopFollowing?.());
      return { point, xml, disks, images: matchImages(images, disks), staging, targetDir, vmconfigDir: dir };
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  });

  try {
    // A stop that came while the engine finished still leaves everything as it was.
    deps.signal.throwIfAborted();
    return req.inPlace ? await swapInPlace(deps, req, setName, restored) : await defineNew(deps, req, setName, restored);
  } finally {
    await rm(restored.staging, { recursive: true, force: true });
  }
}

/** The checkpoint, its domain XML and the disks a request names in a set (and the folder as read, its points); refuses what cannot be restored. */
export async function resolveSet(
  dir: string,
  setName: string,
  req: Pick<RestoreRunRequest, "domain" | "checkpoint" | "disk">,
): Promise<{ point: RestorePoint; xml: string; disks: XmlDisk[]; folder: ChainFolder; points: RestorePoint[]; bytesToRead: number }> {
  const folder = await readChainFolder(dir, req.domain);
  const points = await listRestorePoints(folder);
  if (points.length === 0) throw new BackupSetError(`${setName} holds no checkpoint`);
  const misordered = mtimeOrderProblem(folder);
  if (misordered) throw new BackupSetError(`${setName}: ${misordered}`);
  const point = req.checkpoint === undefined ? points.at(-1)! : points[req.checkpoint];
  if (!point) throw new RestoreRefusedError(`checkpoint ${req.checkpoint} does not exist: ${setName} has ${points.length} (0-${points.length - 1})`);
  // Our own pick of the checkpoint's XML: virtnbdrestore 1.9.15 takes the newest by mtime, even with --until.
  const xml = await readFile(join(dir, `vmconfig.${point.name}.xml`), "utf8").catch((err: unknown) => {
    throw new BackupSetError(`${setName} lacks the domain XML of ${point.name}: ${(err as Error).message}`);
  });
  const disks = domainXmlDisks(xml).filter((d) => (req.disk ? d.target === req.disk : points[0]!.disks.includes(d.target)));
  if (disks.length === 0) throw new RestoreRefusedError(req.disk ? `${setName} has no disk ${req.disk}` : `${setName} has no restorable file disk`);
  return { point, xml, disks, folder, points, bytesToRead: bytesToRestore(folder, point.index, disks.map((d) => d.target)) };
}

export const newImagePath = (targetDir: string, name: string, target: string): string => join(targetDir, `${name}.${target}.qcow2`);

/** Where the XML and the UEFI variables of a new domain are written (created, never replaced). */
export const newDomainFiles = (targetDir: string, name: string, xml: string) => ({ xmlPath: join(targetDir, `${name}.xml`), nvram: domainXmlNvram(xml) === undefined ? undefined : join(targetDir, `${name}_VARS.fd`) });

/** The step that gives a new domain the saved TPM state. */
export const newTpmStep = (checkpoint: string): string => `copy the TPM state saved at ${checkpoint} into the new domain's swtpm state folder (by its new UUID)`;

/** What an in-place restore does with the domain's files besides its disks: its UEFI variables and TPM state. */
async function planInPlaceFiles(libvirt: Libvirt, domain: string, setDir: string, xml: string, checkpoint: string): Promise<{ nvram: InPlaceFile; tpm: InPlaceFile }> {
  return { nvram: await planInPlaceNvram(libvirt, domain, setDir, xml, checkpoint), tpm: await planInPlaceTpm(libvirt, domain, setDir, checkpoint) };
}

/** The step that tells what a new domain is defined without (see `stripUnrestorable`). */
export const leaveOutStep = (stripped: readonly string[]): string => `leave out what a restore cannot bring back safely: ${stripped.join(", ")}`;

/** The folder of backup sets a request reads (real path): the backup root, or `from` inside it. */
export async function setsRoot(backupRoot: string, from: string | undefined): Promise<string> {
  return from === undefined ? backupRoot : confinePath(from, "from", (real) => isInside(backupRoot, real), `inside the backup root ${backupRoot}`);
}

/**
 * The real folder of a new domain's images: `targetDir`, else the folder of the saved XML's first disk. Only a
 * folder libvirt already keeps images in is written to (a storage pool path, a domain's disk folder).
 */
export async function newImageFolder(deps: Pick<RestoreDeps, "libvirt" | "libvirtUri">, req: Pick<RestoreRunRequest, "targetDir">, disks: XmlDisk[]): Promise<string> {
  const folders = await Promise.all((await libvirtImageFolders(deps.libvirt)).map((f) => realPathOf(f).catch(() => undefined)));
  const allowed = new Set(folders);
  const where = `a storage pool path or image folder of a domain on ${deps.libvirtUri}`;
  return req.targetDir === undefined
    ? confinePath(dirname(disks[0]!.file), "the saved image folder", (real) => allowed.has(real), `${where}; name one as targetDir`)
    : confinePath(req.targetDir, "targetDir", (real) => allowed.has(real), where);
}

/** Why an in-place restore onto a domain in this state is refused, if it is. */
function inPlaceRefusal(req: RestoreRunRequest, info: DomainInfo | undefined): string | undefined {
  if (!info) return `domain ${JSON.stringify(req.domain)} does not exist; restore it as a new domain instead`;
  if (info.state !== "shut off" && !req.consent) return `${req.domain} is ${info.state}; an in-place restore needs it shut off, or consent to shut it down`;
  return undefined;
}

/** What a run would do, without doing it (read-only; the set is read without the chain lease). */
export async function planRestore(deps: Pick<RestoreDeps, "libvirt" | "libvirtUri" | "backupRoot">, req: RestoreRunRequest): Promise<RestorePlanReply> {
  const setName = req.set ?? req.domain;
  const { point, xml, disks } = await resolveSet(setFolder(await setsRoot(deps.backupRoot, req.from), req.domain, setName), setName, req);
  const engine = `virtnbdrestore ${setName} until ${point.name}${req.disk ? ` disk ${req.disk}` : ""} into a staging folder`;
  const plan = { domain: req.domain, target: req.as ?? req.domain, set: setName, checkpoint: point.name, disks: disks.map((d) => d.target) };
  if (req.inPlace) {
    const info = await deps.libvirt.domainInfo(req.domain);
    const refusal = inPlaceRefusal(req, info);
    if (!info) return { ...plan, images: [], steps: [], refusal: refusal! };
    const images = (await currentImages(deps, req.domain, disks)).map((d) => d.file);
    const others = await planInPlaceFiles(deps.libvirt, req.domain, setFolder(await setsRoot(deps.backupRoot, req.from), req.domain, setName), xml, point.name);
    const steps = [
      ...(info.state !== "shut off" ? [`shut down ${req.domain} (within VM_WAIT_TIME)`] : []),
      engine,
      ...images.map((i) => `replace ${i} (the original kept aside until every file is in place)`),
      ...[others.nvram, others.tpm].flatMap((f) => inPlaceFileStep(f, point.name) ?? []),
      `remove libvirt's checkpoints of ${req.domain}`,
      `archive the active chain of ${req.domain}`,
    ];
    const refused = refusal ?? [others.nvram, others.tpm].flatMap((f) => (f.kind === "refuse" ? [f.why] : []))[0];
    return { ...plan, images, steps, ...(refused ? { refusal: refused } : {}) };
  }
  const targetDir = await newImageFolder(deps, req, disks);
  const images = disks.map((d) => newImagePath(targetDir, req.as!, d.target));
  const { xmlPath, nvram } = newDomainFiles(targetDir, req.as!, xml);
  const { stripped } = stripUnrestorable(xml);
  const taken = (await deps.libvirt.domainInfo(req.as!)) ? `a domain named ${JSON.stringify(req.as)} exists already` : undefined;
  const existing = (await Promise.all([...images, xmlPath, ...(nvram ? [nvram] : [])].map(async (i) => ((await exists(i)) ? i : undefined)))).find(Boolean);
  const refusal = taken ?? (existing ? `${existing} exists already` : undefined);
  const setDir = setFolder(await setsRoot(deps.backupRoot, req.from), req.domain, setName);
  const saved = nvram ? await savedNvramCopy(setDir, xml, point.name) : undefined;
  const tpm = domainXmlHasTpmEmulator(xml) ? await savedTpmStateCopy(setDir, point.name) : undefined;
  const steps = [
    engine,
    ...(stripped.length > 0 ? [leaveOutStep(stripped)] : []),
    `write ${xmlPath} (new UUID and MACs)`,
    ...(nvram ? [saved ? `copy the UEFI variables saved at ${point.name} to ${nvram}` : `no UEFI variables saved at ${point.name}: libvirt creates ${nvram} from the firmware's template at the first start`] : []),
    ...(tpm ? [newTpmStep(point.name)] : []),
    ...(req.define !== false ? [`define ${req.as}`] : []),
  ];
  return { ...plan, images, steps, ...(stripped.length > 0 ? { stripped } : {}), ...(refusal ? { refusal } : {}) };
}

interface Restored {
  point: { name: string };
  xml: string;
  disks: XmlDisk[];
  /** Restored image per disk target, in the staging folder. */
  images: Map<string, string>;
  staging: string;
  targetDir: string;
  vmconfigDir: string;
}

/** virtnbdrestore names each image after the original's file (else after its target). */
function matchImages(images: string[], disks: XmlDisk[]): Map<string, string> {
  const byTarget = new Map<string, string>();
  for (const d of disks) {
    const image = images.find((i) => basename(i) === basename(d.file)) ?? images.find((i) => basename(i) === d.target);
    if (!image) throw new Error(`virtnbdrestore gave ${images.map((i) => basename(i)).join(", ")}, none for disk ${d.target} (${basename(d.file)})`);
    byTarget.set(d.target, image);
  }
  return byTarget;
}

/** True when anything is at `path`, a dangling symlink included. */
export async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

async function defineNew(deps: RestoreDeps, req: RestoreRunRequest, setName: string, r: Restored): Promise<RestoreRunReply> {
  const name = req.as!;
  const finals = new Map([...r.images.keys()].map((t) => [t, newImagePath(r.targetDir, name, t)]));
  const { xmlPath, nvram } = newDomainFiles(r.targetDir, name, r.xml);
  const { xml, stripped } = stripUnrestorable(r.xml);
  if (stripped.length > 0) await deps.progress(leaveOutStep(stripped));
  const edited = rewriteAsNewDomain(xml, { name, images: finals, ...(nvram ? { nvram } : {}) });
  // Every file is created, never replaced nor written through a symlink (O_EXCL, link); a failure removes ours.
  const created: string[] = [];
  let nvramWritten: string | undefined;
  let tpmWritten: string | undefined;
  try {
    await writeFile(xmlPath, edited.xml, { mode: 0o600, flag: "wx" });
    created.push(xmlPath);
    // The backed-up UEFI variable store, `<basename>.<checkpoint>` in the set, becomes the new domain's own.
    const saved = nvram && (await savedNvramCopy(r.vmconfigDir, r.xml, r.point.name));
    if (nvram && saved) {
      await deps.progress(`copy the UEFI variables saved at ${r.point.name} to ${nvram}`);
      await copyFile(saved, nvram, constants.COPYFILE_EXCL);
      created.push(nvram);
      await chmod(nvram, 0o600);
      nvramWritten = nvram;
    }
    const tpm = domainXmlHasTpmEmulator(xml) ? await savedTpmStateCopy(r.vmconfigDir, r.point.name) : undefined;
    if (tpm) {
      await deps.progress(newTpmStep(r.point.name));
      const placed = await placeNewTpmState(tpm, edited.uuid);
      created.push(placed.folder);
      tpmWritten = placed.file;
    }
    for (const [target, image] of r.images) {
      // Guest data: only root reads it; libvirt's dynamic ownership hands it to QEMU's user while the domain runs.
      await chmod(image, 0o600);
      await link(image, finals.get(target)!);
      created.push(finals.get(target)!);
    }
  } catch (err) {
    // Only what this run made: files, and the new UUID's TPM state folder.
    for (const f of created) await rm(f, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new RestoreRefusedError(`a file of the new domain exists already, never replaced: ${(err as Error).message}`);
    throw err;
  }
  const define = req.define !== false;
  if (define) {
    await deps.progress(`define domain ${name} (uuid ${edited.uuid})`);
    await deps.libvirt.defineXml(edited.xml);
  }
  return { domain: name, set: setName, checkpoint: r.point.name, images: [...finals.values()].sort(), defined: define, xmlPath, ...(nvramWritten ? { nvram: nvramWritten } : {}), ...(tpmWritten ? { tpmState: tpmWritten } : {}), ...(stripped.length > 0 ? { stripped } : {}) };
}

async function currentImages(deps: Pick<RestoreDeps, "libvirt">, domain: string, disks: XmlDisk[]): Promise<XmlDisk[]> {
  const live = await deps.libvirt.diskImages(domain);
  return disks.map((d) => {
    const now = live.find((l) => l.target === d.target);
    if (!now) throw new RestoreRefusedError(`${domain} has no file disk ${d.target} any more`);
    return { target: d.target, file: now.path };
  });
}

/** In place needs a shut-off domain: a running one is shut down only with consent, and within VM_WAIT_TIME. */
async function prepareInPlace(deps: RestoreDeps, req: RestoreRunRequest): Promise<void> {
  const info = await deps.libvirt.domainInfo(req.domain);
  const refusal = inPlaceRefusal(req, info);
  if (refusal) throw new RestoreRefusedError(refusal);
  if (info!.state === "shut off") return;
  await deps.progress(`shutdown ${req.domain} (was ${info!.state}), waiting up to ${deps.waitTimeSec} s`);
  await deps.libvirt.shutdown(req.domain);
  if (!(await waitForDomainState(deps.libvirt, req.domain, "shut off", { timeoutMs: deps.waitTimeSec * 1000, tolerateErrors: true })))
    throw new RestoreRefusedError(`${req.domain} did not shut down within VM_WAIT_TIME (${deps.waitTimeSec} s); nothing was changed`);
}

async function swapInPlace(deps: RestoreDeps, req: RestoreRunRequest, setName: string, r: Restored): Promise<RestoreRunReply> {
  const domain = req.domain;
  if ((await deps.libvirt.domainState(domain)) !== "shut off") throw new RestoreRefusedError(`${domain} was started during the restore; nothing was changed`);
  const current = await currentImages(deps, domain, r.disks);
  const others = await planInPlaceFiles(deps.libvirt, domain, r.vmconfigDir, r.xml, r.point.name);
  for (const f of [others.nvram, others.tpm]) if (f.kind === "refuse") throw new RestoreRefusedError(`${f.why}; nothing was changed`);
  const kept: { original: string; aside: string }[] = [];
  // Files put where there was none (an nvram or TPM state file libvirt had not created yet): removed again on failure.
  const placed: string[] = [];
  /** Moves `replacement` to `file`, the original (if any) kept aside. */
  const swapIn = async (file: string, replacement: string): Promise<void> => {
    if (await exists(file)) {
      const aside = `${file}.vmbs-before-restore.${Date.now()}`;
      await deps.progress(`keep ${file} as ${aside}`);
      await rename(file, aside);
      kept.push({ original: file, aside });
    } else placed.push(file);
    // Guest data: only root reads it; libvirt's dynamic ownership hands it to QEMU's user while the domain runs.
    await chmod(replacement, 0o600);
    await rename(replacement, file);
  };
  let copying: string | undefined;
  try {
    for (const d of current) await swapIn(d.file, r.images.get(d.target)!);
    for (const f of [others.nvram, others.tpm]) {
      const step = inPlaceFileStep(f, r.point.name);
      if (step) await deps.progress(step);
      if (f.kind !== "replace") continue;
      // Copied beside the target first, so the swap itself is a rename on one file system.
      await mkdir(dirname(f.target), { recursive: true, mode: 0o700 });
      copying = `${f.target}.vmbs-restore.${Date.now()}`;
      await copyFile(f.saved, copying, constants.COPYFILE_EXCL);
      await swapIn(f.target, copying);
      copying = undefined;
    }
  } catch (err) {
    // Put every original back: a half-swapped domain would mix points in time.
    if (copying) await rm(copying, { force: true });
    for (const f of placed) await rm(f, { force: true });
    for (const k of kept.reverse()) await rename(k.aside, k.original).catch(() => undefined);
    throw err;
  }
  const end = chainEndAfterRestore(await deps.libvirt.checkpoints(domain), await exists(join(deps.backupRoot, domain)));
  for (const cp of end.deleteCheckpoints) {
    await deps.progress(`delete checkpoint metadata ${cp}`);
    await deps.libvirt.deleteCheckpoint(domain, cp, true);
  }
  let archivedAs: string | undefined;
  if (end.archiveFolder) {
    archivedAs = await deps.withChain(domain, async () => {
      await deps.progress(`archive the active chain of ${domain}`);
      return archiveChainFolder(deps.backupRoot, domain, deps.timeZone);
    });
  }
  for (const k of kept) {
    await deps.progress(`delete the kept original ${k.aside}`);
    await rm(k.aside, { force: true });
  }
  return { domain, set: setName, checkpoint: r.point.name, images: current.map((d) => d.file).sort(), defined: true, ...replacedFiles(others), ...(archivedAs ? { archivedAs } : {}) };
}

/** The reply's fields naming the nvram and TPM state files an in-place restore replaced. */
function replacedFiles({ nvram, tpm }: { nvram: InPlaceFile; tpm: InPlaceFile }): { nvram?: string; tpmState?: string } {
  return { ...(nvram.kind === "replace" ? { nvram: nvram.target } : {}), ...(tpm.kind === "replace" ? { tpmState: tpm.target } : {}) };
}

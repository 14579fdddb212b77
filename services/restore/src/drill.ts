import { readdir, readFile, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { archiveDomainOf, isActiveChainFolder, readChainFolder, verifyChecksums, type ChainFolder } from "@vmbs/chain";
import { backupRootMarker, drillScratchFolder, type DrillChainResult, type DrillFault } from "@vmbs/contracts";
import { checkImage, imageVirtualSize, parseVirtualSize, runEngineRestore } from "@vmbs/virt";
import { BackupSetError, listBackupSets, mtimeOrderProblem, setFolder } from "./backup-sets.js";
import { domainXmlDisks } from "./domain-xml.js";

/*
 * Restore drills: prove that a chain restores, without touching a domain. Per chain: every recorded checksum
 * is re-checked, the newest checkpoint is restored with the engine into scratch space, each image passes
 * `qemu-img check` and has the virtual size the backup recorded, and the saved domain XML parses.
 */

/** One chain to drill: a backup set of a domain in the backup root. */
export interface DrillTarget {
  domain: string;
  set: string;
}

/** A root folder as seen by {@link drillTargetsAmong}. */
export interface RootFolder {
  name: string;
  /** `<name>/<name>.cpt` is a file: the active chain folder of a domain `name`. */
  ownCpt: boolean;
}

/**
 * Pure: the chains among the folders of a backup root: active chain folders (`X` holding `X.cpt`) and archives
 * (`X.<timestamp>`), sorted by domain, the active chain first, then archives newest first. The root's marker,
 * the drills' scratch folder and any other folder (a user's, one set aside as `.foreign-files`) are no chain.
 */
export function drillTargetsAmong(folders: readonly RootFolder[]): DrillTarget[] {
  const targets: (DrillTarget & { active: boolean })[] = [];
  for (const f of folders) {
    if (f.name === backupRootMarker || f.name === drillScratchFolder) continue;
    const archived = archiveDomainOf(f.name);
    if (archived !== null) targets.push({ domain: archived, set: f.name, active: false });
    else if (f.ownCpt) targets.push({ domain: f.name, set: f.name, active: true });
  }
  targets.sort((a, b) => (a.domain !== b.domain ? (a.domain < b.domain ? -1 : 1) : a.active !== b.active ? (a.active ? -1 : 1) : a.set < b.set ? 1 : -1));
  return targets.map(({ domain, set }) => ({ domain, set }));
}

/** The chains a drill covers: those of `domain`, or every chain of the root. Refuses a domain without any. */
export async function drillTargets(root: string, domain?: string): Promise<DrillTarget[]> {
  if (domain !== undefined) {
    const sets = (await listBackupSets(root, domain)).filter((s) => s.checkpoints > 0 || !s.active);
    if (sets.length === 0) throw new BackupSetError(`${root} holds no backup set of ${JSON.stringify(domain)}`);
    return sets.map((s) => ({ domain, set: s.name }));
  }
  const folders: RootFolder[] = [];
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    folders.push({ name: e.name, ownCpt: await isActiveChainFolder(root, e.name) });
  }
  return drillTargetsAmong(folders);
}

/** The disk target and virtual size each `<dev>.<checkpoint>.qcow.json` of the set records (the engine's `qemu-img info` of the source). */
async function recordedDisks(folder: ChainFolder, checkpoint: string): Promise<{ disk: string; image: string; virtualSize: number | undefined; file: string }[]> {
  const suffix = `.${checkpoint}.qcow.json`;
  const out = [];
  for (const f of folder.files) {
    if (f.path.includes("/") || !f.path.endsWith(suffix) || f.path.length === suffix.length) continue;
    const text = await readFile(join(folder.dir, f.path), "utf8");
    let info: { filename?: unknown } = {};
    let virtualSize: number | undefined;
    try {
      info = JSON.parse(text) as { filename?: unknown };
      virtualSize = parseVirtualSize(text);
    } catch {
      virtualSize = undefined;
    }
    const disk = f.path.slice(0, -suffix.length);
    out.push({ disk, image: typeof info.filename === "string" ? basename(info.filename) : disk, virtualSize, file: f.path });
  }
  return out;
}

export interface DrillChainDeps {
  backupRoot: string;
  /** This run's scratch folder; the chain's images go into a sub-folder removed before this returns. */
  scratchDir: string;
  signal: AbortSignal;
  engineTimeoutMs?: number;
}

/**
 * Drills one chain (hold its chain lease around this call). Never throws for what it finds: every problem is a
 * fault of the result, naming the checkpoint and file where it has one.
 */
export async function drillChain(deps: DrillChainDeps, target: DrillTarget): Promise<DrillChainResult> {
  const started = Date.now();
  const faults: DrillFault[] = [];
  const unverified: string[] = [];
  let verified = 0;
  const images: DrillChainResult["images"] = [];
  const folder = await readChainFolder(setFolder(deps.backupRoot, target.domain, target.set), target.domain);
  const cpt = folder.cpt ?? [];
  const newest = cpt.at(-1);
  const result = (): DrillChainResult => ({
    ...target,
    ok: faults.length === 0,
    ...(newest ? { checkpoint: newest } : {}),
    checkpoints: cpt.length,
    verifiedFiles: verified,
    unverifiedFiles: unverified,
    images,
    faults,
    durationMs: Date.now() - started,
  });
  if (!folder.exists || folder.symlink) faults.push({ reason: `${target.set} is not a readable chain folder` });
  else if (!newest) faults.push({ reason: `${target.set} has no checkpoint${folder.cptError ? ` (${folder.cptError})` : ` list ${target.domain}.cpt`}` });
  if (!newest) return result();

  for (const checkpoint of cpt) {
    try {
      const v = await verifyChecksums(folder, checkpoint, deps.signal);
      verified += v.verified.length;
      unverified.push(...v.unverified);
      faults.push(...v.faults);
    } catch (err) {
      if (deps.signal.aborted) throw err;
      faults.push({ checkpoint, reason: `the data files of ${checkpoint} could not be read: ${(err as Error).message}` });
    }
  }
  const misordered = mtimeOrderProblem(folder);
  if (misordered) faults.push({ reason: misordered });

  const vmconfig = `vmconfig.${newest}.xml`;
  try {
    domainXmlDisks(await readFile(join(folder.dir, vmconfig), "utf8"));
  } catch (err) {
    faults.push({ checkpoint: newest, file: vmconfig, reason: `the saved domain XML ${vmconfig} is unusable: ${(err as Error).message}` });
  }

  const out = join(deps.scratchDir, target.set);
  try {
    const disks = await recordedDisks(folder, newest);
    const restored = await runEngineRestore({
      inputDir: folder.dir,
      outputDir: out,
      untilCheckpoint: newest,
      signal: deps.signal,
      ...(deps.engineTimeoutMs ? { timeoutMs: deps.engineTimeoutMs } : {}),
    });
    for (const d of disks) {
      const image = restored.images.find((i) => basename(i) === d.image) ?? restored.images.find((i) => basename(i) === d.disk);
      if (!image) {
        faults.push({ checkpoint: newest, file: d.file, reason: `restoring ${newest} gave no image for disk ${d.disk}` });
        continue;
      }
      const check = await checkImage(image, deps.signal);
      if (!check.ok) faults.push({ checkpoint: newest, reason: `the restored image of disk ${d.disk} fails qemu-img check (${check.detail})` });
      const size = await imageVirtualSize(image);
      images.push({ disk: d.disk, virtualSize: size });
      if (d.virtualSize === undefined) faults.push({ checkpoint: newest, file: d.file, reason: `${d.file} records no virtual size` });
      else if (size !== d.virtualSize)
        faults.push({ checkpoint: newest, file: d.file, reason: `the restored image of disk ${d.disk} has ${size} bytes, the backup recorded ${d.virtualSize}` });
    }
    if (disks.length === 0) faults.push({ checkpoint: newest, reason: `${target.set} records no disk (*.${newest}.qcow.json) for ${newest}` });
  } catch (err) {
    // The engine's and qemu-img's errors name the command and the folder or image already.
    faults.push({ checkpoint: newest, reason: (err as Error).message });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  return result();
}

/** One line per fault, for a person: `<set>: <checkpoint>: <reason>`. */
export function describeFaults(results: readonly DrillChainResult[]): string {
  return results
    .flatMap((r) => r.faults.map((f) => `${r.set}: ${f.checkpoint ? `${f.checkpoint}: ` : ""}${f.reason}`))
    .join("; ");
}

import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { chainFolderPath, dataFiles, dataFilesOfCheckpoint, parseArchiveFolderName, readChainFolder, type ChainFolder } from "@vmbs/chain";
import type { BackupSet, RestorePoint } from "@vmbs/contracts";
import { VmbsError } from "@vmbs/contracts";

/** A request named a set or folder that is not a backup set of the domain. */
export class BackupSetError extends VmbsError {
  constructor(message: string) {
    super("refused", message);
  }
}

/** libvirt writes `<creationTime>` (epoch seconds) into every checkpoint XML. */
const CREATION_TIME = /<creationTime>\s*(\d+)\s*<\/creationTime>/;
const MAX_CHECKPOINT_XML_BYTES = 4 * 1024 * 1024;

const isSetOf = (domain: string, name: string): boolean => name === domain || parseArchiveFolderName(domain, name) !== null;

/** The disk target of a data file: its first name token (`vda.inc.virtnbdbackup.1.data` → `vda`). */
export const diskOf = (path: string): string => path.slice(0, path.indexOf("."));

/**
 * The folder of set `set` (default the active chain) of `domain` under `root`. Only the active folder or an
 * archive of exactly this domain is accepted, so no request can point the engine at another folder.
 */
export function setFolder(root: string, domain: string, set: string = domain): string {
  if (!isSetOf(domain, set)) throw new BackupSetError(`${JSON.stringify(set)} is not a backup set of ${JSON.stringify(domain)}`);
  return join(dirname(chainFolderPath(root, domain)), set);
}

/** The domain's backup sets in `root`: the active chain first, then archives newest first (names sort by time). */
export async function listBackupSets(root: string, domain: string): Promise<BackupSet[]> {
  const names = (await readdir(root)).filter((n) => isSetOf(domain, n));
  const sets: BackupSet[] = [];
  for (const name of names) {
    const folder = await readChainFolder(join(root, name), domain);
    if (!folder.exists || folder.symlink) continue;
    sets.push({
      name,
      active: name === domain,
      checkpoints: folder.cpt?.length ?? 0,
      bytes: dataFiles(folder).reduce((sum, f) => sum + f.size, 0),
    });
  }
  return sets.sort((a, b) => (a.active !== b.active ? (a.active ? -1 : 1) : a.name < b.name ? 1 : -1));
}

/**
 * virtnbdrestore applies a disk's data files in mtime order, not by name (virtnbdbackup.md §3.5): a set copied
 * without its mtimes would get the full written over its incrementals, silently. Returns why the set's mtimes
 * contradict its checkpoint order, or undefined when they agree.
 */
export function mtimeOrderProblem(folder: ChainFolder): string | undefined {
  const order = folder.cpt ?? [];
  const byDisk = new Map<string, { index: number; path: string; mtimeMs: number }[]>();
  for (const [index, name] of order.entries())
    for (const f of dataFilesOfCheckpoint(folder, name)) {
      const files = byDisk.get(diskOf(f.path)) ?? [];
      files.push({ index, path: f.path, mtimeMs: f.mtimeMs });
      byDisk.set(diskOf(f.path), files);
    }
  for (const files of byDisk.values())
    for (let i = 1; i < files.length; i++)
      if (files[i]!.mtimeMs <= files[i - 1]!.mtimeMs)
        return `${files[i]!.path} is not newer than ${files[i - 1]!.path}: virtnbdrestore would apply them out of order (was the set copied without its mtimes? cp -a / rsync -t keep them)`;
  return undefined;
}

/** Bytes of the data files of `disks` in checkpoints 0 to `untilIndex`: what a restore up to that checkpoint reads. */
export function bytesToRestore(folder: ChainFolder, untilIndex: number, disks: readonly string[]): number {
  let bytes = 0;
  for (const name of (folder.cpt ?? []).slice(0, untilIndex + 1))
    for (const f of dataFilesOfCheckpoint(folder, name)) if (disks.includes(diskOf(f.path))) bytes += f.size;
  return bytes;
}

/** The restore points of a read chain folder, in chain order (index 0 = the full backup). */
export async function listRestorePoints(folder: ChainFolder): Promise<RestorePoint[]> {
  if (!folder.exists || folder.symlink) throw new BackupSetError(`${folder.dir} is not a readable chain folder`);
  if (folder.cpt === null) throw new BackupSetError(`${folder.dir} has no checkpoint list${folder.cptError ? ` (${folder.cptError})` : ""}`);
  const points: RestorePoint[] = [];
  for (const [index, name] of folder.cpt.entries()) {
    const data = dataFilesOfCheckpoint(folder, name);
    const xml = folder.files.find((f) => f.path === `checkpoints/${name}.xml`);
    let time: string | null = null;
    if (xml && xml.size <= MAX_CHECKPOINT_XML_BYTES) {
      const m = CREATION_TIME.exec(await readFile(join(folder.dir, xml.path), "utf8").catch(() => ""));
      if (m?.[1]) time = new Date(Number(m[1]) * 1000).toISOString();
    }
    if (time === null && data.length > 0) time = new Date(Math.max(...data.map((f) => f.mtimeMs))).toISOString();
    points.push({ index, name, time, bytes: data.reduce((s, f) => s + f.size, 0), disks: [...new Set(data.map((f) => diskOf(f.path)))].sort() });
  }
  return points;
}

import { posix } from "node:path";
import { archiveFolderName, isActiveChainFolder, parseArchiveFolderName, removeToolFiles, mirrorArchivesToDelete, uniqueArchiveName, type FileStamps } from "@vmbs/chain";
import type { MirrorStore } from "./mirror-store.js";

/** Differences between the local chain and its mirror copy, as short lines; empty = equal. */
export function compareTrees(local: FileStamps, mirror: FileStamps): string[] {
  const diffs: string[] = [];
  for (const [path, l] of local) {
    const m = mirror.get(path);
    if (!m) diffs.push(`${path} missing on the mirror`);
    else if (m.size !== l.size) diffs.push(`${path} is ${m.size} bytes on the mirror, ${l.size} locally`);
    else if (m.mtimeS !== l.mtimeS) diffs.push(`${path} has mtime ${m.mtimeS} on the mirror, ${l.mtimeS} locally`);
  }
  for (const path of mirror.keys()) if (!local.has(path)) diffs.push(`${path} exists only on the mirror`);
  return diffs.sort();
}

/**
 * The archive name for the mirror copy: the local archive's name when one of this domain has the same
 * timestamp to the second (rsync kept the mtimes, so the copy archives under the same name as the original),
 * else the seed's name from the copy's oldest file.
 */
export function mirrorArchiveName(domain: string, mirror: FileStamps, localNames: readonly string[], mirrorNames: readonly string[], timeZone?: string): string {
  let oldest = Infinity;
  for (const f of mirror.values()) oldest = Math.min(oldest, f.mtimeS);
  const computed = archiveFolderName(domain, Number.isFinite(oldest) ? oldest * 1000 : Date.now(), timeZone);
  const secondPrefix = computed.slice(0, -10);
  const twins = localNames.filter((n) => parseArchiveFolderName(domain, n) !== null && n.startsWith(secondPrefix));
  const name = twins.length === 1 ? twins[0]! : computed;
  return uniqueArchiveName(name, new Set(mirrorNames));
}

/** What archiving the mirror copy of a domain would do; read only. */
export interface MirrorRotationPlan {
  /** The archive name the copy gets. */
  archivedTo: string;
  /** The mirror archives deleted right after (mirrorArchivesToDelete), oldest last. */
  toDelete: string[];
}

export interface MirrorRotation {
  archivedTo: string;
  pruned: string[];
  /** Archives that were due but keep foreign files (left in place). */
  keptForeign: string[];
}

type MirrorRotationInput = { root: string; domain: string; mirror: FileStamps; localNames: readonly string[]; keep: number; timeZone?: string };

/**
 * Plans the archive of the mirror copy of `domain` and the mirror retention after it (mirrorArchivesToDelete,
 * libs/chain chain-end.ts), reading the target only: what {@link rotateMirrorCopy} carries out, and what a dry run reports.
 */
export async function planMirrorRotation(store: MirrorStore, o: MirrorRotationInput): Promise<MirrorRotationPlan> {
  const names = (await store.readdir(o.root)).filter((e) => e.kind === "directory").map((e) => e.name);
  const archivedTo = mirrorArchiveName(o.domain, o.mirror, o.localNames, names, o.timeZone);
  const after = names.filter((n) => n !== o.domain).concat(archivedTo);
  // A VM may be named like an archive: only such names need the look at `X/X.cpt` (none when keep 0 deletes nothing).
  // The new archive name is free on the target, so it is never such a folder, before or after the rename.
  const lookAlikes = o.keep === 0 ? [] : after.filter((n) => n !== archivedTo && parseArchiveFolderName(o.domain, n) !== null);
  const activeChains: string[] = [];
  for (const name of lookAlikes) if (await isActiveChainFolder(o.root, name, store)) activeChains.push(name);
  return { archivedTo, toDelete: mirrorArchivesToDelete(o.domain, after, activeChains, o.keep) };
}

/** Archives the mirror copy of `domain` (a rename in the target root), then deletes the archives {@link planMirrorRotation} names. */
export async function rotateMirrorCopy(store: MirrorStore, o: MirrorRotationInput): Promise<MirrorRotation> {
  const plan = await planMirrorRotation(store, o);
  await store.rename(posix.join(o.root, o.domain), posix.join(o.root, plan.archivedTo));
  const pruned: string[] = [];
  const keptForeign: string[] = [];
  for (const name of plan.toDelete) {
    const r = await removeToolFiles(posix.join(o.root, name), o.domain, store);
    (r.folderRemoved ? pruned : keptForeign).push(name);
  }
  return { archivedTo: plan.archivedTo, pruned, keptForeign };
}

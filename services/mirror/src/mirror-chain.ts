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

export interface MirrorRotation {
  archivedTo: string;
  pruned: string[];
  /** Archives that were due but keep foreign files (left in place). */
  keptForeign: string[];
}

/**
 * Archives the mirror copy of `domain` (a rename in the target root), then deletes the archives
 * mirrorArchivesToDelete (libs/chain chain-end.ts) names.
 */
export async function rotateMirrorCopy(
  store: MirrorStore,
  o: { root: string; domain: string; mirror: FileStamps; localNames: readonly string[]; keep: number; timeZone?: string },
): Promise<MirrorRotation> {
  const names = (await store.readdir(o.root)).filter((e) => e.kind === "directory").map((e) => e.name);
  const archivedTo = mirrorArchiveName(o.domain, o.mirror, o.localNames, names, o.timeZone);
  await store.rename(posix.join(o.root, o.domain), posix.join(o.root, archivedTo));
  const after = names.filter((n) => n !== o.domain).concat(archivedTo);
  // A VM may be named like an archive: only such names need the look at `X/X.cpt` (none when keep 0 deletes nothing).
  const lookAlikes = o.keep === 0 ? [] : after.filter((n) => parseArchiveFolderName(o.domain, n) !== null);
  const activeChains: string[] = [];
  for (const name of lookAlikes) if (await isActiveChainFolder(o.root, name, store)) activeChains.push(name);
  const pruned: string[] = [];
  const keptForeign: string[] = [];
  for (const name of mirrorArchivesToDelete(o.domain, after, activeChains, o.keep)) {
    const r = await removeToolFiles(posix.join(o.root, name), o.domain, store);
    (r.folderRemoved ? pruned : keptForeign).push(name);
  }
  return { archivedTo, pruned, keptForeign };
}

import { readdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { archiveFolderName, uniqueArchiveName } from "./archive-name.js";
import { oldestMtime } from "./chain-files.js";
import { readChainFolder, type ChainFolder } from "./chain-folder.js";
import { chainFolderPath } from "./chain-paths.js";

/** The name {@link archiveChainFolder} gives the folder, among the names `existing` in the root (a dry run asks too). */
export function chainArchiveName(domain: string, folder: ChainFolder, existing: ReadonlySet<string>, timeZone?: string): string {
  return uniqueArchiveName(archiveFolderName(domain, oldestMtime(folder) ?? Date.now(), timeZone), existing);
}

/**
 * Renames a domain's active chain folder to its archive name (seed-compatible, from the oldest file's mtime),
 * in the same parent: a rename, never a copy. Returns the archive folder name. `observed` is the folder as the
 * caller read it under the same lease, unchanged since; without it the folder is read here.
 */
export async function archiveChainFolder(root: string, domain: string, timeZone?: string, observed?: ChainFolder): Promise<string> {
  const folder = chainFolderPath(root, domain);
  observed ??= await readChainFolder(folder, domain);
  if (observed.symlink) throw new Error(`refusing to archive ${folder}: it is a symbolic link`);
  const target = chainArchiveName(domain, observed, new Set(await readdir(root)), timeZone);
  await rename(folder, join(root, target));
  return target;
}

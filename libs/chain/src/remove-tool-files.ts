import { lstat, readdir, rename, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { uniqueArchiveName } from "./archive-name.js";
import { isToolFile, isToolFolder } from "./chain-files.js";
import { VmbsError } from "@vmbs/contracts";

/** What {@link removeToolFiles} did to one folder. */
export interface RemovedFiles {
  /** Files deleted, relative to the folder. */
  removed: string[];
  /** Entries left because the tool did not make them (files, links, unknown folders), relative to the folder. */
  kept: string[];
  /** The folder itself was removed (it held nothing else). */
  folderRemoved: boolean;
}

export class NotAChainFolderError extends VmbsError {
  constructor(dir: string) {
    super("refused", `refusing to clear ${dir}: it is a symbolic link or not a directory`);
  }
}

function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

/**
 * Deletes a chain (or archive) folder of `domain` the only safe way: each file the tool recognises as its own
 * (isToolFile, exact names) is unlinked, then `checkpoints/`, `checksums/` and the folder are removed with rmdir once empty.
 * Everything else stays where it is and is reported in `kept`; nothing is ever removed recursively, no link is
 * followed, and a symlinked folder is refused.
 */
export async function removeToolFiles(dir: string, domain: string): Promise<RemovedFiles> {
  const st = await lstat(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new NotAChainFolderError(dir);
  const out: RemovedFiles = { removed: [], kept: [], folderRemoved: false };
  for (const top of await readdir(dir, { withFileTypes: true })) {
    if (top.isDirectory() && isToolFolder(top.name)) {
      for (const e of await readdir(join(dir, top.name), { withFileTypes: true })) {
        const rel = `${top.name}/${e.name}`;
        if (e.isFile() && isToolFile(rel, domain)) {
          await unlinkIfThere(join(dir, rel));
          out.removed.push(rel);
        } else out.kept.push(rel);
      }
      if (!(await rmdirIfEmpty(join(dir, top.name)))) out.kept.push(`${top.name}/`);
    } else if (top.isFile() && isToolFile(top.name, domain)) {
      await unlinkIfThere(join(dir, top.name));
      out.removed.push(top.name);
    } else out.kept.push(top.isDirectory() ? `${top.name}/` : top.name);
  }
  out.kept = [...new Set(out.kept)].sort();
  out.folderRemoved = out.kept.length === 0 && (await rmdirIfEmpty(dir));
  return out;
}

async function unlinkIfThere(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => {
    if (errorCode(err) !== "ENOENT") throw err;
  });
}

/** rmdir, never rm -r: true when removed, false when something is (still) inside. */
async function rmdirIfEmpty(path: string): Promise<boolean> {
  try {
    await rmdir(path);
    return true;
  } catch (err) {
    if (errorCode(err) === "ENOTEMPTY" || errorCode(err) === "EEXIST") return false;
    throw err;
  }
}

/** Suffix of a folder set aside because it holds files the tool did not make; never an archive name. */
const FOREIGN_FILES_SUFFIX = ".foreign-files";

/**
 * Moves `<root>/<name>` aside to `<base>.foreign-files` (or a free variant); `base` defaults to `name`. The new
 * name matches no archive pattern, so retention never looks at it again: the files in it are the user's.
 */
export async function setFolderAside(root: string, name: string, base = name): Promise<string> {
  const target = uniqueArchiveName(`${base}${FOREIGN_FILES_SUFFIX}`, new Set(await readdir(root)));
  await rename(join(root, name), join(root, target));
  return target;
}

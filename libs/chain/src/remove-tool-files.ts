import { readdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { uniqueArchiveName } from "./archive-name.js";
import { isToolFile, isToolFolder } from "./chain-files.js";
import { localFileRemover, type FileRemover } from "./file-lister.js";
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
 * followed, and a symlinked folder is refused. `fs` is where the folder lives: the local disk, or a mirror target.
 */
export async function removeToolFiles(dir: string, domain: string, fs: FileRemover = localFileRemover): Promise<RemovedFiles> {
  if ((await fs.lstat(dir)).kind !== "directory") throw new NotAChainFolderError(dir);
  const out: RemovedFiles = { removed: [], kept: [], folderRemoved: false };
  for (const top of await fs.readdir(dir)) {
    if (top.kind === "directory" && isToolFolder(top.name)) {
      const keptBefore = out.kept.length;
      for (const e of await fs.readdir(join(dir, top.name))) {
        const rel = `${top.name}/${e.name}`;
        if (e.kind === "file" && isToolFile(rel, domain)) {
          await unlinkIfThere(fs, join(dir, rel));
          out.removed.push(rel);
        } else out.kept.push(rel);
      }
      // A folder known to keep something is not tried: not every store tells "not empty" apart from a failure.
      if (out.kept.length > keptBefore || !(await rmdirIfEmpty(fs, join(dir, top.name)))) out.kept.push(`${top.name}/`);
    } else if (top.kind === "file" && isToolFile(top.name, domain)) {
      await unlinkIfThere(fs, join(dir, top.name));
      out.removed.push(top.name);
    } else out.kept.push(top.kind === "directory" ? `${top.name}/` : top.name);
  }
  out.kept = [...new Set(out.kept)].sort();
  out.folderRemoved = out.kept.length === 0 && (await rmdirIfEmpty(fs, dir));
  return out;
}

async function unlinkIfThere(fs: FileRemover, path: string): Promise<void> {
  await fs.unlink(path).catch((err: unknown) => {
    if (errorCode(err) !== "ENOENT") throw err;
  });
}

/** rmdir, never rm -r: true when removed, false when something is (still) inside. */
async function rmdirIfEmpty(fs: FileRemover, path: string): Promise<boolean> {
  try {
    await fs.rmdir(path);
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

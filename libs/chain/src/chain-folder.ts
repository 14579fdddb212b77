import { join } from "node:path";
import { localFileLister, type FileLister } from "./file-lister.js";

/** One regular file inside a chain folder. */
export interface ChainFile {
  /** Path relative to the chain folder, always '/' separated, e.g. "checkpoints/virtnbdbackup.0.xml". */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Modification time in epoch milliseconds (fractional part kept as the OS reports it). */
  mtimeMs: number;
}

/** What is on disk in one domain's chain folder. Facts only: no decision is taken while reading. */
export interface ChainFolder {
  /** The folder that was read, as given by the caller. */
  dir: string;
  /** False when the folder does not exist (or is not a directory); then `files` is empty and `cpt` null. */
  exists: boolean;
  /**
   * The folder path is a symbolic link. It is never followed: `files` is empty, `cpt` null, and nothing may
   * be written to, archived from or deleted in it (the link could point anywhere, e.g. at a user's data).
   */
  symlink?: boolean;
  /** Every regular file below the folder, recursively, sorted by path. Symlinks and special files are left out. */
  files: ChainFile[];
  /** The checkpoint names from `<domain>.cpt`; null when the file is missing or unreadable as a list. */
  cpt: string[] | null;
  /** Set when `<domain>.cpt` exists but is not a JSON array of strings (then `cpt` is null). */
  cptError?: string;
}

/** Relative path → size and mtime in whole seconds (SFTP's precision) of every file of a chain folder. */
export type FileStamps = ReadonlyMap<string, { size: number; mtimeS: number }>;

/** The files of a folder as read, stamped to the second so a local folder and its mirror copy compare; undefined when absent. */
export function fileStampsOf(folder: ChainFolder): FileStamps | undefined {
  if (!folder.exists) return undefined;
  return new Map(folder.files.map((f) => [f.path, { size: f.size, mtimeS: Math.floor(f.mtimeMs / 1000) }]));
}

/** Error codes that mean "there is nothing here", as opposed to a real I/O failure we must not hide. */
const ABSENT = new Set(["ENOENT", "ENOTDIR"]);

function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

async function walk(fs: FileLister, root: string, rel: string, out: ChainFile[]): Promise<void> {
  let entries;
  try {
    entries = await fs.readdir(rel === "" ? root : join(root, rel));
  } catch (err) {
    // A sub-folder removed while we walk (a concurrent cleanup) is simply gone, not an error.
    if (rel !== "" && ABSENT.has(errorCode(err) ?? "")) return;
    throw err;
  }
  for (const entry of entries) {
    const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
    if (entry.kind === "directory") {
      await walk(fs, root, childRel, out);
    } else if (entry.kind === "file") {
      try {
        const st = await fs.lstat(join(root, childRel));
        if (st.kind === "file") out.push({ path: childRel, size: st.size, mtimeMs: st.mtimeMs });
      } catch (err) {
        // Same race as above: a file deleted between readdir and lstat is not part of the folder any more.
        if (!ABSENT.has(errorCode(err) ?? "")) throw err;
      }
    }
  }
}

/** A checkpoint list holds ~20 bytes per checkpoint; even MAX_BACKUPS_PER_CHAIN=100000 stays far below this. */
export const MAX_CPT_BYTES = 16 * 1024 * 1024;

/** Checks that a parsed `.cpt` value has the shape virtnbdbackup writes: a JSON array of strings. */
function parseCpt(text: string): { cpt: string[] } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!Array.isArray(value)) return { error: "not a JSON array" };
  const bad = value.findIndex((v) => typeof v !== "string");
  if (bad >= 0) return { error: `entry ${bad} is not a string` };
  return { cpt: value as string[] };
}

/**
 * Reads a chain folder: the file list (recursive) and the domain's `.cpt` checkpoint list.
 * A missing folder is reported as `exists: false`; other I/O errors (permissions, …) are thrown,
 * because guessing about a folder we cannot read could lead a planner to delete a good chain.
 * `fs` is where the folder lives: the local disk by default, or e.g. the mirror's SFTP target.
 */
export async function readChainFolder(dir: string, domain: string, fs: FileLister = localFileLister): Promise<ChainFolder> {
  try {
    // lstat: a symlinked chain folder is reported, never followed (LOCAL_BACKUP_PATH itself may be a link).
    const st = await fs.lstat(dir);
    if (st.kind === "symlink") return { dir, exists: true, symlink: true, files: [], cpt: null };
    if (st.kind !== "directory") return { dir, exists: false, files: [], cpt: null };
  } catch (err) {
    if (ABSENT.has(errorCode(err) ?? "")) return { dir, exists: false, files: [], cpt: null };
    throw err;
  }

  const files: ChainFile[] = [];
  await walk(fs, dir, "", files);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  // The .cpt file is named after the domain, spaces included (virtnbdbackup.md §2.2).
  const cptName = `${domain}.cpt`;
  const cptFile = files.find((f) => f.path === cptName);
  if (!cptFile) return { dir, exists: true, files, cpt: null };
  // Read into memory whole, so its size is checked first: a corrupt or foreign file may be any size.
  if (cptFile.size > MAX_CPT_BYTES) return { dir, exists: true, files, cpt: null, cptError: `${cptName}: ${cptFile.size} bytes, over the ${MAX_CPT_BYTES}-byte limit of a checkpoint list` };

  let text: string;
  try {
    text = await fs.readFile(join(dir, cptName));
  } catch (err) {
    if (ABSENT.has(errorCode(err) ?? "")) return { dir, exists: true, files, cpt: null };
    throw err;
  }
  const parsed = parseCpt(text);
  if ("error" in parsed) return { dir, exists: true, files, cpt: null, cptError: `${cptName}: ${parsed.error}` };
  return { dir, exists: true, files, cpt: parsed.cpt };
}

/**
 * Whether `<root>/<name>` holds `<name>.cpt` as a regular file: the active chain folder of a domain `name`,
 * whatever its name looks like (a domain may be named like an archive). `fs` is where the root lives.
 */
export async function isActiveChainFolder(root: string, name: string, fs: FileLister = localFileLister): Promise<boolean> {
  return fs.lstat(join(root, name, `${name}.cpt`)).then(
    (st) => st.kind === "file",
    () => false,
  );
}

import { lstat, readdir, readFile, rmdir, unlink } from "node:fs/promises";
import type { Stats } from "node:fs";

export type FileKind = "file" | "directory" | "symlink" | "other";

/** One entry of a directory; `kind` describes the entry itself (a symlink is not followed). */
export interface ListedEntry {
  name: string;
  kind: FileKind;
}

export interface FileFacts {
  kind: FileKind;
  size: number;
  /** Modification time in epoch milliseconds. */
  mtimeMs: number;
}

/**
 * The file access chain reading needs, so it runs over any store: node:fs locally, SFTP for the mirror.
 * Paths are absolute and '/'-separated. A path that is not there must reject with an error whose `code` is
 * "ENOENT" (or "ENOTDIR"), as node:fs does; other errors are real I/O failures and are passed on.
 */
export interface FileLister {
  readdir(path: string): Promise<ListedEntry[]>;
  /** Facts about the path itself (a symlink stays a symlink). */
  lstat(path: string): Promise<FileFacts>;
  /** The whole file as UTF-8. */
  readFile(path: string): Promise<string>;
}

function kindOf(e: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): FileKind {
  return e.isFile() ? "file" : e.isDirectory() ? "directory" : e.isSymbolicLink() ? "symlink" : "other";
}

const factsOf = (st: Stats): FileFacts => ({ kind: kindOf(st), size: st.size, mtimeMs: st.mtimeMs });

/** The local file system. */
export const localFileLister: FileLister = {
  readdir: async (path) => (await readdir(path, { withFileTypes: true })).map((e) => ({ name: e.name, kind: kindOf(e) })),
  lstat: async (path) => factsOf(await lstat(path)),
  readFile: (path) => readFile(path, "utf8"),
};

/**
 * A FileLister that can also delete files and empty folders: what removing a chain's own files needs, on the
 * local disk or on a mirror target. Errors follow the FileLister rule (a missing path rejects with "ENOENT").
 */
export interface FileRemover extends FileLister {
  unlink(path: string): Promise<void>;
  /** Removes an empty folder; never recursive. */
  rmdir(path: string): Promise<void>;
}

/** The local file system, with deletion. */
export const localFileRemover: FileRemover = { ...localFileLister, unlink, rmdir };

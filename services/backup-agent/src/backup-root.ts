import { access, constants, realpath, stat } from "node:fs/promises";
import { VmbsError } from "@vmbs/contracts";

/*
 * LOCAL_BACKUP_PATH is refused when the agent would create, archive and delete chain folders among files that
 * are not backups: `/`, a system folder, or a folder anyone may write to (another user could plant a look-alike
 * chain folder or a symlink). Decided on observed facts, so the rule is testable without such folders.
 */

/** Why a backup root is refused. */
export type BackupRootProblem = "missing" | "not-a-directory" | "unwritable" | "system-folder" | "world-writable";

/** What `inspectBackupRoot` observed about a path. */
export interface BackupRootFacts {
  path: string;
  /** The path with every symlink resolved; undefined when it does not exist. */
  realPath?: string;
  isDirectory: boolean;
  /** Permission bits (stat mode & 0o7777). */
  mode: number;
  /** access(R_OK | W_OK) succeeded. */
  writable: boolean;
}

export type BackupRootVerdict = { ok: true } | { ok: false; problem: BackupRootProblem };

/** Folders that are never a backup root themselves (their subfolders may be: /srv/backups, /mnt/user/backups). */
const systemFolders = new Set([
  "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/mnt/user",
  "/mnt/cache", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/backups",
  "/var/cache", "/var/lib", "/var/lib/libvirt", "/var/lib/libvirt/images", "/var/local", "/var/lock", "/var/log",
  "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp",
]);
/** Trees owned by the system or the kernel: nothing below them is a backup root either. */
const systemTrees = ["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin", "/sys", "/usr"];

function isSystemFolder(realPath: string): boolean {
  return systemFolders.has(realPath) || systemTrees.some((tree) => realPath.startsWith(`${tree}/`));
}

/** Pure: the verdict on a backup root from what was observed about it. */
export function judgeBackupRoot(facts: BackupRootFacts): BackupRootVerdict {
  if (facts.realPath === undefined) return { ok: false, problem: "missing" };
  if (isSystemFolder(facts.realPath)) return { ok: false, problem: "system-folder" };
  if (!facts.isDirectory) return { ok: false, problem: "not-a-directory" };
  if ((facts.mode & 0o002) !== 0) return { ok: false, problem: "world-writable" };
  if (!facts.writable) return { ok: false, problem: "unwritable" };
  return { ok: true };
}

const problemText: Record<BackupRootProblem, string> = {
  missing: "does not exist",
  "not-a-directory": "is not a directory",
  unwritable: "is not readable and writable by this user",
  "system-folder": "is a system folder",
  "world-writable": "is writable by every user",
};

export class BackupRootError extends VmbsError {
  constructor(
    readonly path: string,
    readonly problem: BackupRootProblem,
    /** The resolved path, when it differs (a symlink) and exists. */
    readonly realPath?: string,
    options?: ErrorOptions,
  ) {
    super("misconfigured", `LOCAL_BACKUP_PATH ${path}${realPath && realPath !== path ? ` (resolves to ${realPath})` : ""} ${problemText[problem]}`, options);
  }
}

export async function inspectBackupRoot(path: string): Promise<BackupRootFacts> {
  const realPath = await realpath(path).catch(() => undefined);
  if (realPath === undefined) return { path, isDirectory: false, mode: 0, writable: false };
  const st = await stat(realPath);
  const writable = await access(realPath, constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  return { path, realPath, isDirectory: st.isDirectory(), mode: st.mode & 0o7777, writable };
}

/** Throws a {@link BackupRootError} unless `path` may hold backups. */
export async function assertBackupRoot(path: string): Promise<void> {
  const facts = await inspectBackupRoot(path);
  const verdict = judgeBackupRoot(facts);
  if (!verdict.ok) throw new BackupRootError(path, verdict.problem, facts.realPath);
}

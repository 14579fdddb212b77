import { posix } from "node:path";
import { execa } from "execa";
import type { FileFacts, ListedEntry } from "@vmbs/chain";
import { MirrorStoreError, type MirrorStore } from "./mirror-store.js";

/** How rclone is run: its config file (MIRROR_RCLONE_CONFIG) and the time one call may take. */
export interface RcloneOptions {
  configFile?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** rclone's exit status for "directory not found" (and 4 for "file not found"). */
const NOT_FOUND = new Set([3, 4]);

/** Runs rclone with an argument array (never a shell); a failure carries rclone's last error lines. */
export async function rclone(args: readonly string[], o: RcloneOptions): Promise<string> {
  const base = o.configFile ? ["--config", o.configFile] : [];
  const r = await execa("rclone", [...base, ...args], { timeout: o.timeoutMs, cancelSignal: o.signal, reject: false, stdin: "ignore" });
  if (r.exitCode === 0 && !r.failed) return r.stdout;
  const tail = (r.stderr || r.stdout || "").trim().split("\n").slice(-2).join(" | ");
  const why = r.timedOut ? `no result within ${Math.round(o.timeoutMs / 1000)} s` : `exit code ${r.exitCode ?? "none"}`;
  const err = new MirrorStoreError(`rclone ${args[0]} failed (${why}): ${tail || r.shortMessage}`);
  if (r.exitCode !== undefined && NOT_FOUND.has(r.exitCode)) Object.assign(err, { code: "ENOENT" });
  return Promise.reject(err);
}

interface LsjsonEntry {
  Name: string;
  Size: number;
  ModTime: string;
  IsDir: boolean;
}

/**
 * The mirror's file operations on an rclone remote (`remote` = `name:`): lsjson, cat, moveto, deletefile, rmdir.
 * Paths are the part after the colon. Facts seen by readdir are remembered, so verifying a chain costs one
 * listing per folder instead of a process per file.
 */
export function rcloneStore(remote: string, o: RcloneOptions): MirrorStore {
  const facts = new Map<string, FileFacts>();
  const at = (path: string) => `${remote}${path}`;
  const list = async (path: string): Promise<LsjsonEntry[]> => JSON.parse(await rclone(["lsjson", "--no-mimetype", at(path)], o)) as LsjsonEntry[];
  return {
    async readdir(path): Promise<ListedEntry[]> {
      const entries = await list(path);
      for (const e of entries) {
        facts.set(posix.join(path, e.Name), { kind: e.IsDir ? "directory" : "file", size: e.IsDir ? 0 : e.Size, mtimeMs: Date.parse(e.ModTime) });
      }
      return entries.map((e) => ({ name: e.Name, kind: e.IsDir ? "directory" : "file" }));
    },
    async lstat(path) {
      const known = facts.get(path);
      if (known) return known;
      await this.readdir(posix.dirname(path));
      const found = facts.get(path);
      if (!found) throw Object.assign(new MirrorStoreError(`${at(path)} not found`), { code: "ENOENT" });
      return found;
    },
    readFile: (path) => rclone(["cat", at(path)], o),
    async rename(from, to) {
      facts.clear();
      // Only folders are renamed (archiving): `move` moves their contents, server-side where the remote can.
      await rclone(["move", "--delete-empty-src-dirs", at(from), at(to)], o);
      await rclone(["rmdir", at(from)], o).catch(() => undefined);
    },
    async unlink(path) {
      facts.delete(path);
      await rclone(["deletefile", at(path)], o);
    },
    async rmdir(path) {
      await rclone(["rmdir", at(path)], o);
    },
    close: async () => facts.clear(),
  };
}

/** Bytes of the final `--stats` record of a `--use-json-log` run (the last `"stats":{…"bytes":N`). */
export function rcloneStatsBytes(log: string): number {
  let bytes = 0;
  for (const m of log.matchAll(/"stats":\{"bytes":(\d+)/g)) bytes = Number(m[1]);
  return bytes;
}

/**
 * Copies a local chain folder to `<remote><dest>` (new and changed files; rclone keeps mtimes), then `rclone check`s
 * the pair (sizes, and hashes where the remote has them; a crypt remote checks sizes). Returns the bytes sent.
 */
export async function rcloneCopy(source: string, remote: string, dest: string, o: RcloneOptions): Promise<number> {
  const base = o.configFile ? ["--config", o.configFile] : [];
  const args = [...base, "copy", `${source}/`, `${remote}${dest}`, "--use-json-log", "--log-level", "INFO", "--stats", "1h", "--retries", "1", "--contimeout", "10s", "--timeout", "5m"];
  const r = await execa("rclone", args, { timeout: o.timeoutMs, cancelSignal: o.signal, reject: false, stdin: "ignore" });
  if (r.exitCode !== 0 || r.failed) {
    const errors = r.stderr.split("\n").filter((l) => l.includes('"level":"error"')).slice(-2).map((l) => (JSON.parse(l) as { msg: string }).msg);
    throw new MirrorStoreError(`rclone copy failed (${r.timedOut ? "timeout" : `exit code ${r.exitCode ?? "none"}`}): ${errors.join(" | ") || r.stderr.trim().split("\n").at(-1) || r.shortMessage}`);
  }
  await rclone(["check", `${source}/`, `${remote}${dest}`], o);
  return rcloneStatsBytes(r.stderr);
}

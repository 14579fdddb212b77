import { setTimeout as sleep } from "node:timers/promises";
import { constants } from "node:fs";
import { open, readFile, rm, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { isPidAlive } from "@vmbs/bus";
import { qemuUids, tmpEntry, trustedTmpEntry } from "./stale-tmp.js";

/** Only engine leftovers directly in the tmp folder may be removed, whatever a plan says. */
function assertEngineTmp(path: string, tmpDir: string): void {
  const name = basename(path);
  if (dirname(path) !== tmpDir || !/^(virtnbdbackup|backup)\.[^/]+$/.test(name))
    throw new Error(`refusing to remove ${path}: not a virtnbdbackup leftover in ${tmpDir}`);
}

/**
 * Removes /var/tmp leftovers; already missing ones are fine. The owner is checked again right before: the
 * name may have been taken by another user's file since the chain was observed, and that file stays.
 */
export async function cleanTmp(paths: readonly string[], tmpDir: string): Promise<void> {
  const qemu = await qemuUids();
  for (const path of paths) {
    assertEngineTmp(path, tmpDir);
    const entry = await tmpEntry(tmpDir, basename(path));
    if (entry && trustedTmpEntry(entry, qemu)) await rm(path, { force: true });
  }
}

/** The pid in a root-owned regular pid file, read without following a symlink; undefined for anything else. */
async function rootPid(file: string): Promise<number | undefined> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.uid !== 0) return undefined;
    // A pid is a few digits; a bigger file is no pid file (nothing is allocated from its size).
    const buf = Buffer.alloc(32);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const pid = Number(buf.subarray(0, bytesRead).toString("utf8").trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } finally {
    await fh.close();
  }
}

/**
 * Stops the qemu-nbd named in each root-owned pid file. The pid is checked to still be a qemu-nbd run by root
 * (/proc/<pid>/comm and its owner), because a pid from a stale file may by now belong to any other process.
 * Returns the pids stopped.
 */
export async function killQemuNbd(pidFiles: readonly string[], tmpDir: string): Promise<number[]> {
  const stopped: number[] = [];
  for (const file of pidFiles) {
    assertEngineTmp(file, tmpDir);
    const pid = await rootPid(file);
    if (pid === undefined) continue;
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
    const owner = (await stat(`/proc/${pid}`).catch(() => undefined))?.uid;
    if (comm !== "qemu-nbd" || owner !== 0) continue;
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 50 && isPidAlive(pid); i++) await sleep(100);
    if (isPidAlive(pid)) process.kill(pid, "SIGKILL");
    stopped.push(pid);
  }
  return stopped;
}

import { setTimeout as sleep } from "node:timers/promises";
import { readFile, rm } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { processAlive } from "./stale-tmp.js";

/** Only engine leftovers directly in the tmp folder may be removed, whatever a plan says. */
function assertEngineTmp(path: string, tmpDir: string): void {
  const name = basename(path);
  if (dirname(path) !== tmpDir || !/^(virtnbdbackup|backup)\.[^/]+$/.test(name))
    throw new Error(`refusing to remove ${path}: not a virtnbdbackup leftover in ${tmpDir}`);
}

/** Removes /var/tmp leftovers; already missing ones are fine. */
export async function cleanTmp(paths: readonly string[], tmpDir: string): Promise<void> {
  for (const path of paths) {
    assertEngineTmp(path, tmpDir);
    await rm(path, { force: true });
  }
}


/**
 * Stops the qemu-nbd named in each pid file. The pid is checked to still be a qemu-nbd (/proc/<pid>/comm),
 * because a pid from a stale file may by now belong to any other process. Returns the pids stopped.
 */
export async function killQemuNbd(pidFiles: readonly string[], tmpDir: string): Promise<number[]> {
  const stopped: number[] = [];
  for (const file of pidFiles) {
    assertEngineTmp(file, tmpDir);
    const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
    if (comm !== "qemu-nbd") continue;
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 50 && processAlive(pid); i++) await sleep(100);
    if (processAlive(pid)) process.kill(pid, "SIGKILL");
    stopped.push(pid);
  }
  return stopped;
}

import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { StaleTmp } from "@vmbs/chain";

/** Where virtnbdbackup 1.9.15 and QEMU put sockets, scratch files and qemu-nbd pid files (virtnbdbackup.md §4.4). */
export const ENGINE_TMP_DIR = "/var/tmp";

/** Scratch files younger than this may belong to a job that is only starting; they are never called stale. */
const SCRATCH_MIN_AGE_MS = 60_000;

/** True when a process with this pid exists (EPERM means it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface TmpEntry {
  name: string;
  mtimeMs: number;
}

/**
 * Classifies /var/tmp entries, conservatively. Sockets and pid files embed the engine's pid
 * (`virtnbdbackup.<pid>[.<dev>][.pid]`): stale only when that pid is dead. Scratch files `backup.XXXXX.<dev>`
 * carry no owner, so they count only when no backup job is active on the host and they are over a minute old.
 */
export function classifyTmp(entries: readonly TmpEntry[], o: { alive: (pid: number) => boolean; anyJobActive: boolean; now: number; dir?: string }): StaleTmp {
  const dir = o.dir ?? ENGINE_TMP_DIR;
  const out: StaleTmp = { sockets: [], scratch: [], pidFiles: [] };
  for (const { name, mtimeMs } of entries) {
    const engine = /^virtnbdbackup\.(\d+)(\.[^/]+)?$/.exec(name);
    if (engine) {
      if (o.alive(Number(engine[1]))) continue;
      (name.endsWith(".pid") ? out.pidFiles : out.sockets).push(join(dir, name));
    } else if (/^backup\.[A-Za-z0-9_]{5,}\.[^/]+$/.test(name)) {
      if (!o.anyJobActive && o.now - mtimeMs > SCRATCH_MIN_AGE_MS) out.scratch.push(join(dir, name));
    }
  }
  return out;
}

/**
 * Reads /var/tmp and returns the engine leftovers that belong to no live job. `anyJobActive` (costly: one
 * libvirt call per domain) is only asked when there is a scratch file to judge.
 */
export async function findStaleTmp(anyJobActive: () => Promise<boolean>, dir = ENGINE_TMP_DIR): Promise<StaleTmp> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith("virtnbdbackup.") || n.startsWith("backup."));
  const entries: TmpEntry[] = [];
  for (const name of names) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st && !st.isDirectory()) entries.push({ name, mtimeMs: st.mtimeMs });
  }
  const scratch = entries.some((e) => e.name.startsWith("backup."));
  return classifyTmp(entries, { alive: processAlive, anyJobActive: scratch ? await anyJobActive() : false, now: Date.now(), dir });
}

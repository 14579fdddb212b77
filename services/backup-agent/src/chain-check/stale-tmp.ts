import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { StaleTmp } from "@vmbs/chain";
import { isPidAlive } from "@vmbs/bus";

/** Where virtnbdbackup 1.9.15 and QEMU put sockets, scratch files and qemu-nbd pid files (virtnbdbackup.md §4.4). */
export const ENGINE_TMP_DIR = "/var/tmp";

/** Scratch files younger than this may belong to a job that is only starting; they are never called stale. */
const SCRATCH_MIN_AGE_MS = 60_000;

/** The accounts libvirt runs QEMU as (Debian: libvirt-qemu, Fedora/RHEL: qemu); QEMU creates online sockets and scratch files. */
const QEMU_USERS = new Set(["libvirt-qemu", "qemu"]);


/** Reads at most `max` bytes of a file; a file that is bigger is cut there (no allocation from its size). */
async function readHead(path: string, max: number): Promise<string> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await fh.close();
  }
}

/** Uids of the QEMU accounts in /etc/passwd (empty when there are none). */
export async function qemuUids(passwd = "/etc/passwd"): Promise<Set<number>> {
  const text = await readHead(passwd, 4 * 1024 * 1024).catch(() => "");
  const uids = new Set<number>();
  for (const line of text.split("\n")) {
    const [name, , uid] = line.split(":");
    if (name && QEMU_USERS.has(name) && /^\d+$/.test(uid ?? "")) uids.add(Number(uid));
  }
  return uids;
}

export interface TmpEntry {
  name: string;
  mtimeMs: number;
  /** Owner of the entry itself (lstat: a symlink is its own entry, kind "other"). */
  uid: number;
  kind: "file" | "socket" | "other";
}

/**
 * /var/tmp is writable by every local user, so a name proves nothing. A pid file (read, and its process
 * killed) is trusted only when root made it: qemu-nbd runs as root under the engine. A socket or scratch file
 * (deleted) may also come from QEMU, which libvirt runs as its own account. Anything else is left alone.
 */
export function trustedTmpEntry(e: Pick<TmpEntry, "name" | "uid" | "kind">, qemu: ReadonlySet<number>): boolean {
  if (e.name.endsWith(".pid")) return e.kind === "file" && e.uid === 0;
  return e.kind !== "other" && (e.uid === 0 || qemu.has(e.uid));
}

/**
 * Classifies /var/tmp entries, conservatively. Sockets and pid files embed the engine's pid
 * (`virtnbdbackup.<pid>[.<dev>][.pid]`): stale only when that pid is dead. Scratch files `backup.XXXXX.<dev>`
 * carry no owner, so they count only when no backup job is active on the host and they are over a minute old.
 * Entries of untrusted owners (trustedTmpEntry) are never listed.
 */
export function classifyTmp(
  entries: readonly TmpEntry[],
  o: { alive: (pid: number) => boolean; anyJobActive: boolean; now: number; dir?: string; qemuUids: ReadonlySet<number> },
): StaleTmp {
  const dir = o.dir ?? ENGINE_TMP_DIR;
  const out: StaleTmp = { sockets: [], scratch: [], pidFiles: [] };
  for (const entry of entries) {
    const { name, mtimeMs } = entry;
    if (!trustedTmpEntry(entry, o.qemuUids)) continue;
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

/** One /var/tmp entry as classifyTmp needs it, without following a symlink; undefined when it is gone. */
export async function tmpEntry(dir: string, name: string): Promise<TmpEntry | undefined> {
  const st = await lstat(join(dir, name)).catch(() => undefined);
  if (!st) return undefined;
  return { name, mtimeMs: st.mtimeMs, uid: st.uid, kind: st.isFile() ? "file" : st.isSocket() ? "socket" : "other" };
}

/**
 * Reads /var/tmp and returns the engine leftovers that belong to no live job. `anyJobActive` (costly: one
 * libvirt call per domain) is only asked when there is a scratch file to judge.
 */
export async function findStaleTmp(anyJobActive: () => Promise<boolean>, dir = ENGINE_TMP_DIR): Promise<StaleTmp> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith("virtnbdbackup.") || n.startsWith("backup."));
  const entries: TmpEntry[] = [];
  for (const name of names) {
    const entry = await tmpEntry(dir, name);
    if (entry) entries.push(entry);
  }
  const qemu = await qemuUids();
  const scratch = entries.some((e) => e.name.startsWith("backup.") && trustedTmpEntry(e, qemu));
  return classifyTmp(entries, { alive: isPidAlive, anyJobActive: scratch ? await anyJobActive() : false, now: Date.now(), dir, qemuUids: qemu });
}

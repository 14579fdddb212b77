import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { waitFor } from "./wait-for.js";

/** The virtnbdbackup processes of one domain (its name is unique, and passed as `--domain=<name>`). */
export async function enginePids(domain: string): Promise<number[]> {
  const r = await execa("pgrep", ["-f", "--", `^\\S*python\\S* \\S*virtnbdbackup --domain=${domain.replace(/[^A-Za-z0-9]/g, ".")}`], { reject: false, timeout: 10_000 });
  return r.stdout.split("\n").filter(Boolean).map(Number);
}

/**
 * SIGSTOPs the engine of `domain` once it writes data into `folder` (its backup job is then running), and
 * resolves with its pid: the caller SIGCONTs or lets the agent cancel it.
 */
export async function stopEngineMidTransfer(folder: string, domain: string): Promise<number> {
  const pid = await waitFor(
    async () => {
      const partial = (await readdir(folder).catch(() => [] as string[])).find((n) => n.endsWith(".data.partial"));
      if (!partial || (await stat(join(folder, partial))).size === 0) return undefined;
      return (await enginePids(domain))[0];
    },
    { timeoutMs: 60_000, intervalMs: 20, what: "the engine writing data" },
  );
  process.kill(pid, "SIGSTOP");
  return pid;
}

/**
 * Keeps the SIGSTOPped process `pid` (from one of the stop… helpers here) stopped for `ms`, then SIGCONTs it: a
 * progress display gets time to draw whatever the speed of the machine.
 */
export async function holdStopped(pid: number, ms: number): Promise<void> {
  try {
    await sleep(ms);
  } finally {
    process.kill(pid, "SIGCONT");
  }
}

/** A path as a literal in a pgrep (extended) regular expression. */
const literal = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * SIGSTOPs the virtnbdrestore writing into `staging` (a restore run's `.vmbs-restore-<runId>` folder, passed as its
 * `--output`: its step event names it) once `minBytes` are allocated there, and resolves with its pid: the caller
 * SIGCONTs it.
 */
export async function stopRestoreEngineMidWrite(staging: string, minBytes: number): Promise<number> {
  const pid = await waitFor(
    async () => {
      let written = 0;
      for (const f of await readdir(staging).catch(() => [] as string[])) written += ((await stat(join(staging, f)).catch(() => undefined))?.blocks ?? 0) * 512;
      if (written < minBytes) return undefined;
      const r = await execa("pgrep", ["-f", "--", `virtnbdrestore .*--output ${literal(staging)}( |$)`], { reject: false, timeout: 10_000 });
      return r.stdout.split("\n").filter(Boolean).map(Number)[0];
    },
    { timeoutMs: 120_000, intervalMs: 20, what: "virtnbdrestore writing the images" },
  );
  process.kill(pid, "SIGSTOP");
  return pid;
}

/**
 * SIGSTOPs the `qemu-img convert` copying `source` (a replication's image copy) once its output has `minBytes`
 * allocated, and resolves with its pid: the caller SIGCONTs it.
 */
export async function stopImageConvertMidWrite(source: string, minBytes: number): Promise<number> {
  // A copy of a few hundred MiB can end within one pgrep spawn on a busy host: /proc is scanned in-process instead.
  const pid = await waitFor(
    async () => {
      for (const { pid: found, argv } of await processes()) {
        if (!/(^|\/)qemu-img$/.test(argv[0]!) || argv[1] !== "convert" || !argv.includes(source)) continue;
        // Its output is the last word of its command line.
        const written = ((await stat(argv.at(-1)!).catch(() => undefined))?.blocks ?? 0) * 512;
        return written >= minBytes ? found : undefined;
      }
      return undefined;
    },
    { timeoutMs: 120_000, intervalMs: 5, what: `qemu-img convert of ${source} writing` },
  );
  process.kill(pid, "SIGSTOP");
  return pid;
}

/** Every process's pid and argv (a process gone meanwhile is left out). */
async function processes(): Promise<{ pid: number; argv: string[] }[]> {
  const pids = (await readdir("/proc")).filter((n) => /^\d+$/.test(n));
  const all = await Promise.all(pids.map(async (p) => ({ pid: Number(p), argv: (await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "")).split("\0").filter(Boolean) })));
  return all.filter((p) => p.argv.length > 0);
}

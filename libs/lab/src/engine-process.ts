import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
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
  const pid = await waitFor(
    async () => {
      const r = await execa("pgrep", ["-f", "--", `qemu-img convert .*-- ${literal(source)} `], { reject: false, timeout: 10_000 });
      const found = r.stdout.split("\n").filter(Boolean).map(Number)[0];
      if (found === undefined) return undefined;
      // Its output is the last word of its command line.
      const dest = (await readFile(`/proc/${found}/cmdline`, "utf8").catch(() => "")).split("\0").filter(Boolean).at(-1);
      const written = dest ? ((await stat(dest).catch(() => undefined))?.blocks ?? 0) * 512 : 0;
      return written >= minBytes ? found : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 20, what: `qemu-img convert of ${source} writing` },
  );
  process.kill(pid, "SIGSTOP");
  return pid;
}

import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { parseEngineLine } from "./run-backup.js";
import { VmbsError } from "@vmbs/contracts";

export interface RestoreRunOptions {
  /** A chain folder written by virtnbdbackup (active or archived). */
  inputDir: string;
  /** Target folder for the images; created when missing. Files already in it are not reported as restored. */
  outputDir: string;
  /** Restore up to this checkpoint (`--until`, e.g. "virtnbdbackup.2"); default the whole chain. */
  untilCheckpoint?: string;
  /** Restore only the disk with this target dev (`--disk`, e.g. "vda"); default every disk. */
  disk?: string;
  /** Whole run, including qemu-nbd letting go of the images. Default 6 h (a large disk over slow storage). */
  timeoutMs?: number;
  /** Aborting sends SIGINT, so virtnbdrestore stops its qemu-nbd. */
  signal?: AbortSignal;
}

export interface RestoreRunResult {
  /** Absolute paths of the restored images, sorted. */
  images: string[];
  /** The engine's log (virtnbdrestore logs to stderr). */
  lines: string[];
  durationMs: number;
}

export type RestoreFailure = "exit" | "error-logged" | "no-image" | "timeout" | "cancelled" | "image-busy";

/** A restore that did not produce usable images; `lines` holds the engine's log for the reason. */
export class RestoreError extends VmbsError {
  readonly kind: RestoreFailure;
  readonly exitCode: number | undefined;
  readonly lines: readonly string[];
  constructor(kind: RestoreFailure, message: string, o: { exitCode?: number; lines?: readonly string[]; cause?: unknown } = {}) {
    super("failed", message, { cause: o.cause });
    this.kind = kind;
    this.exitCode = o.exitCode;
    this.lines = o.lines ?? [];
  }
}

const defaultTimeoutMs = 6 * 3_600_000;

/** Without -U, qemu-img needs the image's write lock: it gets it only once qemu-nbd has closed the image. */
async function waitUntilReleased(image: string, until: number, signal?: AbortSignal): Promise<boolean> {
  for (;;) {
    const r = await execa("qemu-img", ["info", "--", image], { reject: false, stdin: "ignore", timeout: 30_000 });
    if (r.exitCode === 0) return true;
    if (Date.now() >= until || signal?.aborted) return false;
    await sleep(250);
  }
}

/**
 * Restores a chain with stock virtnbdrestore (argument array, never a shell; a private socket and log file in
 * a temporary folder, so parallel restores do not share `/var/tmp/virtnbdbackup.<pid>`). Resolves only once
 * the qemu-nbd that virtnbdrestore writes through has let go of every image: virtnbdrestore can exit before
 * that, and a reader then sees qcow2 metadata not yet flushed — a disk of zeros.
 */
export async function runEngineRestore(o: RestoreRunOptions): Promise<RestoreRunResult> {
  const started = Date.now();
  const deadline = started + (o.timeoutMs ?? defaultTimeoutMs);
  await mkdir(o.outputDir, { recursive: true });
  const before = new Set(await readdir(o.outputDir));
  const tmp = await mkdtemp(join(tmpdir(), "vmbs-restore-"));
  const args = [
    "--input", o.inputDir,
    "--output", o.outputDir,
    ...(o.untilCheckpoint ? ["--until", o.untilCheckpoint] : []),
    ...(o.disk ? ["--disk", o.disk] : []),
    "--noprogress",
    "--socketfile", join(tmp, "nbd.sock"),
    "--logfile", join(tmp, "virtnbdrestore.log"),
  ];
  try {
    const r = await execa("virtnbdrestore", args, {
      reject: false,
      env: { TMPDIR: tmp },
      stdin: "ignore",
      cancelSignal: o.signal,
      timeout: Math.max(1, deadline - Date.now()),
      killSignal: "SIGINT",
      forceKillAfterDelay: 30_000,
    });
    const lines = String(r.stderr).split(/\r?\n/).filter((l) => l !== "");
    const what = `virtnbdrestore of ${o.inputDir}${o.untilCheckpoint ? ` until ${o.untilCheckpoint}` : ""}`;
    if (r.timedOut) throw new RestoreError("timeout", `${what} did not finish within ${o.timeoutMs ?? defaultTimeoutMs} ms`, { lines });
    if (r.isCanceled) throw new RestoreError("cancelled", `${what} was cancelled`, { lines });
    const errors = lines.map(parseEngineLine).filter((l) => l && (l.level === "ERROR" || l.level === "CRITICAL")).map((l) => l!.message);
    if (r.exitCode !== 0) throw new RestoreError("exit", `${what} exited with ${r.exitCode ?? r.signal}: ${errors[0] ?? lines.at(-1) ?? "no output"}`, { exitCode: r.exitCode, lines });
    if (errors.length > 0) throw new RestoreError("error-logged", `${what} logged an error: ${errors[0]}`, { exitCode: r.exitCode, lines });
    // virtnbdrestore also copies the domain XML next to the images.
    const images = (await readdir(o.outputDir)).filter((f) => !before.has(f) && !f.endsWith(".xml")).sort().map((f) => join(o.outputDir, f));
    if (images.length === 0) throw new RestoreError("no-image", `${what} produced no image`, { exitCode: r.exitCode, lines });
    for (const image of images)
      if (!(await waitUntilReleased(image, deadline, o.signal))) throw new RestoreError("image-busy", `${image} is still held by qemu-nbd after ${what}`, { lines });
    return { images, lines, durationMs: Date.now() - started };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

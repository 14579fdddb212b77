import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";

export interface EngineRunOptions {
  domain: string;
  level: "full" | "inc";
  outputDir: string;
  uri: string;
  /** Already filtered by filterExtraArgs. */
  extraArgs?: readonly string[];
  /**
   * Aborting sends SIGINT: virtnbdbackup then ends the libvirt job itself (SIGTERM would leave it running).
   * SIGKILL follows after `killGraceMs`.
   */
  signal?: AbortSignal;
  /**
   * Watchdog (VMBS_ENGINE_STALL_TIMEOUT): the run is cancelled like an abort when for this long it logged no
   * line and its output folder did not grow. 0 or unset = off.
   */
  stallTimeoutMs?: number;
  /** From SIGINT to SIGKILL; default 120 s (a clean cancel of a big disk takes a while). */
  killGraceMs?: number;
  /** Each log line as it arrives (virtnbdbackup logs to stderr only). */
  onLine?: (line: string) => void;
}

export interface EngineLogLine {
  level: "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";
  message: string;
}

export interface EngineRunResult {
  exitCode: number | undefined;
  /** True when the engine itself declared success ("Finished successfully") with exit code 0. */
  succeeded: boolean;
  cancelled: boolean;
  /** Set when the watchdog cancelled the run: the stall limit in ms. */
  stalledMs?: number;
  lines: string[];
  /** ERROR and CRITICAL messages, oldest first. */
  errors: string[];
  durationMs: number;
}

const logLinePattern = /^\[[\d-]+ [\d:]+\] (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ \S+ - \S+ \[[^\]]*\]:\s*(.*)$/;

/** Parses one virtnbdbackup log line; other text (tracebacks) gives undefined. */
export function parseEngineLine(line: string): EngineLogLine | undefined {
  const m = logLinePattern.exec(line);
  return m ? { level: m[1] as EngineLogLine["level"], message: m[2]! } : undefined;
}

/**
 * The bytes one disk's backup will copy, from the engine's `<n> bytes of data extents to backup` line (logged per
 * disk before its data is read); undefined for any other line.
 */
export function engineBytesToCopy(line: string): number | undefined {
  const m = /^(\d+) bytes of data extents to backup$/.exec(parseEngineLine(line)?.message ?? "");
  return m ? Number(m[1]) : undefined;
}

/** How often the watchdog looks at the output folder: often enough for short limits, rarely for long ones. */
const watchIntervalMs = (stallMs: number) => Math.max(250, Math.min(stallMs / 4, 10_000));

/** Names and sizes of the output folder's files (the engine writes `<dev>.*.data.partial` at its top level). */
async function outputFingerprint(dir: string): Promise<string> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const sizes = await Promise.all(names.map(async (n) => `${n}:${(await stat(join(dir, n)).catch(() => undefined))?.size ?? "-"}`));
  return sizes.sort().join("/");
}

/**
 * Calls `stalled` once when neither `touch` was called (a log line) nor the output folder changed for `stallMs`.
 */
function watchProgress(outputDir: string, stallMs: number, stalled: () => void): { touch: () => void; stop: () => void } {
  let last = Date.now();
  let seen = "";
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void outputFingerprint(outputDir)
      .then((now) => {
        if (now !== seen) {
          seen = now;
          last = Date.now();
        } else if (Date.now() - last >= stallMs) {
          clearInterval(timer);
          stalled();
        }
      })
      .finally(() => (busy = false));
  }, watchIntervalMs(stallMs));
  return { touch: () => (last = Date.now()), stop: () => clearInterval(timer) };
}

/**
 * Runs one virtnbdbackup backup with an argument array (never a shell) and a private TMPDIR. Our options are
 * written `--name=value`, so a domain named `-x` or `a=b` reaches the engine as a value, never as an option.
 */
export async function runEngineBackup(o: EngineRunOptions): Promise<EngineRunResult> {
  const tmp = await mkdtemp(join(tmpdir(), "vmbs-engine-"));
  const started = Date.now();
  const args = [`--domain=${o.domain}`, `--level=${o.level}`, `--output=${o.outputDir}`, `--uri=${o.uri}`, "--noprogress", ...(o.extraArgs ?? [])];
  const lines: string[] = [];
  const stall = new AbortController();
  const cancel = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
  const stallMs = o.stallTimeoutMs ?? 0;
  const watchdog = stallMs > 0 ? watchProgress(o.outputDir, stallMs, () => stall.abort(new Error(`no progress for ${stallMs / 1000} s`))) : undefined;
  try {
    const child = execa("virtnbdbackup", args, {
      reject: false,
      env: { TMPDIR: tmp },
      cancelSignal: cancel,
      killSignal: "SIGINT",
      forceKillAfterDelay: o.killGraceMs ?? 120_000,
      stdin: "ignore",
      lines: false,
    });
    // A stopped engine (SIGSTOP, a debugger) only acts on the SIGINT once it runs again.
    cancel.addEventListener("abort", () => child.pid !== undefined && child.kill("SIGCONT"), { once: true });
    child.stderr?.setEncoding("utf8");
    let pending = "";
    child.stderr?.on("data", (chunk: string) => {
      watchdog?.touch();
      pending += chunk;
      const parts = pending.split(/\r?\n/);
      pending = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        o.onLine?.(line);
      }
    });
    const result = await child;
    if (pending) lines.push(pending);
    const parsed = lines.map(parseEngineLine);
    const errors = parsed.filter((l) => l && (l.level === "ERROR" || l.level === "CRITICAL")).map((l) => l!.message);
    const finished = parsed.some((l) => l?.message.startsWith("Finished successfully"));
    return {
      exitCode: result.exitCode,
      succeeded: result.exitCode === 0 && finished && errors.length === 0,
      cancelled: Boolean(result.isCanceled),
      stalledMs: result.isCanceled && stall.signal.aborted ? stallMs : undefined,
      lines,
      errors,
      durationMs: Date.now() - started,
    };
  } finally {
    watchdog?.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

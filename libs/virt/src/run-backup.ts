import { mkdtemp, rm } from "node:fs/promises";
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
  /** Aborting sends SIGINT: virtnbdbackup then ends the libvirt job itself (SIGTERM would leave it running). */
  signal?: AbortSignal;
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

/** Runs one virtnbdbackup backup with an argument array (never a shell) and a private TMPDIR. */
export async function runEngineBackup(o: EngineRunOptions): Promise<EngineRunResult> {
  const tmp = await mkdtemp(join(tmpdir(), "vmbs-engine-"));
  const started = Date.now();
  const args = ["--domain", o.domain, "--level", o.level, "--output", o.outputDir, "--uri", o.uri, "--noprogress", ...(o.extraArgs ?? [])];
  const lines: string[] = [];
  try {
    const child = execa("virtnbdbackup", args, {
      reject: false,
      env: { TMPDIR: tmp },
      cancelSignal: o.signal,
      killSignal: "SIGINT",
      forceKillAfterDelay: 120_000,
      stdin: "ignore",
      lines: false,
    });
    child.stderr?.setEncoding("utf8");
    let pending = "";
    child.stderr?.on("data", (chunk: string) => {
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
      lines,
      errors,
      durationMs: Date.now() - started,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

import { execa } from "execa";
import type { Hook } from "@vmbs/config";
import type { HookRun } from "@vmbs/contracts";

/** What a hook printed that an event keeps: the end, where the error usually is. */
const OUTPUT_TAIL_CHARS = 2_000;
/** A hook that ignores SIGTERM at its timeout is killed this much later. */
const KILL_GRACE_MS = 5_000;

/**
 * Runs a domain's pre or post hook: its argv as given (never through a shell), with the backup's facts in its
 * environment (`VMBS_HOST`, `VMBS_DOMAIN`, `VMBS_LEVEL`, and for post `VMBS_CHECKPOINT`, `VMBS_OUTCOME`), no stdin,
 * and its time limit. Never throws: a hook that cannot start is a failed run.
 */
export async function runHook(phase: HookRun["phase"], hook: Hook, env: Record<string, string>, signal?: AbortSignal): Promise<HookRun> {
  const started = Date.now();
  const [program, ...args] = hook.argv as [string, ...string[]];
  const r = await execa(program, args, {
    reject: false,
    env,
    stdin: "ignore",
    all: true,
    timeout: hook.timeoutSeconds * 1000,
    forceKillAfterDelay: KILL_GRACE_MS,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  const output = (r.all ?? "").trim().slice(-OUTPUT_TAIL_CHARS);
  return {
    phase,
    argv: hook.argv,
    ok: !r.failed,
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(r.timedOut ? { timedOut: true } : {}),
    durationMs: Date.now() - started,
    ...(output ? { output } : {}),
    ...(r.failed && r.exitCode === undefined && !r.timedOut ? { output: r.shortMessage } : {}),
  };
}

/** One line for a failed hook, for a `failed` event's reason or a log. */
export function describeHookFailure(run: HookRun): string {
  const how = run.timedOut ? "timed out" : run.exitCode !== undefined ? `exited with code ${run.exitCode}` : "could not run";
  const last = run.output?.split("\n").filter((l) => l.trim() !== "").slice(-1)[0];
  return `${run.phase} hook ${JSON.stringify(run.argv[0])} ${how}${last ? `: ${last}` : ""}`;
}

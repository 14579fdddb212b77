import { execa } from "execa";
import { EngineUnavailableError } from "./virt-errors.js";

export interface EngineCapabilities {
  version: string;
  /** Long options the installed virtnbdbackup accepts, e.g. "--noprogress", "--nocolor". */
  options: Set<string>;
}

/** Both answers come from argparse within a second; a hung Python start-up must not stall the agent's start. */
const DETECT_TIMEOUT_MS = 30_000;

/** Asks the installed virtnbdbackup for its version and options (they differ a lot between 1.9.15 and 2.x). */
export async function detectEngine(binary = "virtnbdbackup"): Promise<EngineCapabilities> {
  try {
    const run = (arg: string) => execa(binary, [arg], { timeout: DETECT_TIMEOUT_MS, stdin: "ignore" });
    const version = (await run("--version")).stdout.trim();
    const help = await run("--help");
    const options = new Set(String(help.stdout).match(/--[a-z][a-z-]*/g) ?? []);
    return { version, options };
  } catch (err) {
    throw new EngineUnavailableError(`cannot run ${binary}: is virtnbdbackup installed?`, { cause: err });
  }
}

export interface ExtraArgsResult {
  args: string[];
  /** Each dropped argument with the reason, for a warning at start-up. */
  dropped: { arg: string; reason: string }[];
}

/**
 * Filters VIRTNBDBACKUP_ARGS against what the installed engine supports. `--start-domain` is always dropped:
 * the agent starts a shut-off domain paused itself, on every engine version. Options that would move or change
 * the backup never get here: the config refuses them at start-up (refusedEngineArgs of libs/config).
 */
export function filterExtraArgs(extra: readonly string[], caps: EngineCapabilities): ExtraArgsResult {
  const args: string[] = [];
  const dropped: ExtraArgsResult["dropped"] = [];
  for (const arg of extra) {
    const name = arg.split("=")[0]!;
    if (name === "--start-domain") dropped.push({ arg, reason: "shut-off domains are started paused by the agent itself" });
    else if (name.startsWith("--") && !caps.options.has(name))
      dropped.push({ arg, reason: `not supported by virtnbdbackup ${caps.version}` });
    else args.push(arg);
  }
  return { args, dropped };
}

import { execa } from "execa";
import { EngineUnavailableError } from "./virt-errors.js";

export interface EngineCapabilities {
  version: string;
  /** Long options the installed virtnbdbackup accepts, e.g. "--noprogress", "--nocolor". */
  options: Set<string>;
}

/** Asks the installed virtnbdbackup for its version and options (they differ a lot between 1.9.15 and 2.x). */
export async function detectEngine(binary = "virtnbdbackup"): Promise<EngineCapabilities> {
  try {
    const version = (await execa(binary, ["--version"])).stdout.trim();
    const help = await execa(binary, ["--help"]);
    const options = new Set(String(help.stdout).match(/--[a-z][a-z-]*/g) ?? []);
    return { version, options };
  } catch (err) {
    throw new EngineUnavailableError(`cannot run ${binary}: is virtnbdbackup installed?`, { cause: err });
  }
}

/** Options we set ourselves; a copy of them in VIRTNBDBACKUP_ARGS would contradict the run. */
const ownOptions = new Set(["-d", "--domain", "-l", "--level", "-o", "--output", "-U", "--uri"]);

export interface ExtraArgsResult {
  args: string[];
  /** Each dropped argument with the reason, for a warning at start-up. */
  dropped: { arg: string; reason: string }[];
}

/**
 * Filters VIRTNBDBACKUP_ARGS against what the installed engine supports. `--start-domain` is always dropped:
 * the agent starts a shut-off domain paused itself, on every engine version.
 */
export function filterExtraArgs(extra: readonly string[], caps: EngineCapabilities): ExtraArgsResult {
  const args: string[] = [];
  const dropped: ExtraArgsResult["dropped"] = [];
  for (let i = 0; i < extra.length; i++) {
    const arg = extra[i]!;
    const name = arg.split("=")[0]!;
    if (name === "--start-domain") dropped.push({ arg, reason: "shut-off domains are started paused by the agent itself" });
    else if (ownOptions.has(name)) {
      dropped.push({ arg, reason: "set by the agent" });
      if (!arg.includes("=")) i++; // skip its value too
    } else if (name.startsWith("--") && !caps.options.has(name))
      dropped.push({ arg, reason: `not supported by virtnbdbackup ${caps.version}` });
    else args.push(arg);
  }
  return { args, dropped };
}

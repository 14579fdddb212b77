import { configSchema, type Config } from "./config-schema.js";
import { displayValue } from "./redact.js";

/** sysexits EX_CONFIG: a configuration error, so supervisors don't restart in a loop as they did with the seed's 0. */
export const configErrorExitCode = 78;

export class ConfigError extends Error {
  /** One line per invalid variable: `NAME: what is expected`. */
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Reads the configuration from an environment (process.env in main.ts, a literal object in tests). */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = configSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "config");
    return `${name}: ${issue.message} (got ${JSON.stringify(displayValue(name, env[name] ?? ""))})`;
  });
  throw new ConfigError(problems);
}

/** For main.ts: the config, or a readable message on stderr and exit code 78. */
export function loadConfigOrExit(env: Record<string, string | undefined>): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // One plain line per variable, each naming what to fix.
    process.stderr.write(err.problems.map((p) => `vmbs: invalid configuration: ${p}\n`).join(""));
    process.exit(configErrorExitCode);
  }
}

import { configSchema, type Config } from "./config-schema.js";
import { VmbsError } from "@vmbs/contracts";

/** One invalid variable and what it expects. Its value is not kept: it may hold credentials. */
export interface ConfigProblem {
  setting: string;
  expected: string;
}

export class ConfigError extends VmbsError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super("misconfigured", `invalid configuration:\n  ${problems.map((p) => `${p.setting}: ${p.expected}`).join("\n  ")}`);
    this.problems = problems;
  }
}

/** Reads the configuration from an environment (process.env in the cli, a literal object in tests). */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = configSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  throw new ConfigError(parsed.error.issues.map((issue) => ({ setting: String(issue.path[0] ?? "config"), expected: issue.message })));
}

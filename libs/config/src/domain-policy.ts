import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { VmbsError } from "@vmbs/contracts";
import type { Config } from "./config-schema.js";
import { backupRpo } from "./backup-rpo.js";
import { nameOrGlobMatches } from "./domain-selection.js";
import { validate as isValidCron } from "node-cron";

/** A hook: a command run as an argv array (never through a shell), with a time limit. */
const hookSchema = z
  .object({
    argv: z.array(z.string().min(1, "an empty argument")).min(1, "argv needs at least the program"),
    timeoutSeconds: z.number().int().min(1).max(86_400).default(60),
    /** `fail` (default) fails the backup when the hook fails; `continue` only reports it. */
    onFailure: z.enum(["fail", "continue"]).default("fail"),
  })
  .strict();
export type Hook = z.infer<typeof hookSchema>;

/** Calendar retention of archived chains: the newest restore point of each of the last N days / weeks / months. */
const calendarSchema = z
  .object({ daily: z.number().int().min(0).default(0), weekly: z.number().int().min(0).default(0), monthly: z.number().int().min(0).default(0) })
  .strict()
  .refine((c) => c.daily + c.weekly + c.monthly > 0, "a calendar that keeps nothing (all tiers 0): give a count instead");

/** A libvirt disk target such as `vda` or `sdb`. */
const diskTarget = z.string().regex(/^[a-z][a-z0-9]{1,15}$/, "expected a disk target such as vdb or sda");

const policyEntrySchema = z
  .object({
    /** A domain name, or a shell glob (`db*`, `web-[0-9]`); the first entry that matches a domain wins. */
    match: z.string().min(1, "match needs a domain name or a glob"),
    schedule: z.string().refine(isValidCron, 'expected a cron expression like "*/30 * * * *" or a macro like @daily').optional(),
    maxBackupsPerChain: z.number().int().min(0).max(100_000).optional(),
    chainsToKeep: z.union([z.number().int().min(0).max(100_000), calendarSchema]).optional(),
    mirrorChainsToKeep: z.number().int().min(0).max(100_000).optional(),
    rpoMinutes: z.number().int().min(1).max(5_256_000).optional(),
    excludeDisks: z.array(diskTarget).optional(),
    mirror: z.boolean().optional(),
    hooks: z.object({ pre: hookSchema.optional(), post: hookSchema.optional() }).strict().optional(),
  })
  .strict();
export type PolicyEntry = z.infer<typeof policyEntrySchema>;

const policyFileSchema = z.object({ domains: z.array(policyEntrySchema).default([]) }).strict();

/** The parsed VMBS_POLICY_FILE: its entries in file order. */
export type DomainPolicies = z.infer<typeof policyFileSchema>;

export const NO_DOMAIN_POLICIES: DomainPolicies = { domains: [] };

/** A policy file that cannot be used, with one line per problem (which entry, which field, what is expected). */
export class PolicyFileError extends VmbsError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super("misconfigured", `${source}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join("\n  ")}`}`);
    this.problems = problems;
  }
}

/** Parses the text of a policy file (YAML, so JSON too). `source` names it in errors. */
export function parseDomainPolicies(text: string, source: string): DomainPolicies {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line})` : "";
    throw new PolicyFileError(source, [`not valid YAML${where}: ${(err as Error).message.split("\n")[0]}`]);
  }
  // An empty file is an empty policy, not an error.
  const parsed = policyFileSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const [top, index, ...field] = issue.path;
    if (top !== "domains" || typeof index !== "number") return `${issue.path.join(".") || "the file"}: ${issue.message}`;
    const entry = (raw as { domains: Array<{ match?: unknown }> }).domains[index];
    const name = typeof entry?.match === "string" ? ` (match ${JSON.stringify(entry.match)})` : "";
    return `domains[${index}]${name}${field.length > 0 ? ` ${field.join(".")}` : ""}: ${issue.message}`;
  });
  throw new PolicyFileError(source, problems);
}

/** What applies to one domain: the first matching entry's fields, the rest from the environment. */
export interface EffectivePolicy {
  domain: string;
  /** The entry that matched (its `match`), or undefined when the environment decides everything. */
  matchedBy?: string;
  schedule?: string;
  maxBackupsPerChain: number;
  chainsToKeep: number;
  calendar?: { days: number; weeks: number; months: number };
  mirrorChainsToKeep: number;
  rpoMinutes: number;
  excludeDisks: string[];
  mirror: boolean;
  hooks: { pre?: Hook; post?: Hook };
}

export type PolicyDefaults = Pick<
  Config,
  | "BACKUP_SCHEDULE"
  | "MAX_BACKUPS_PER_CHAIN"
  | "LOCAL_BACKUP_CHAINS_TO_KEEP"
  | "LOCAL_RETENTION_DAYS"
  | "LOCAL_RETENTION_WEEKS"
  | "LOCAL_RETENTION_MONTHS"
  | "RSYNC_BACKUP_CHAINS_TO_KEEP"
  | "RSYNC_BACKUP_PATH"
  | "MIRROR_RCLONE_TARGETS"
  | "BACKUP_RPO_MINUTES"
  | "NOTIFY_STALE_HOURS"
>;

/** The entry that decides `domain`: the first whose `match` is the name or a glob matching it. */
export function matchingEntry(policies: DomainPolicies, domain: string): PolicyEntry | undefined {
  return policies.domains.find((e) => nameOrGlobMatches(e.match, domain));
}

/** Pure: the effective policy of `domain` under `policies`, falling back to the environment's settings. */
export function policyFor(policies: DomainPolicies, defaults: PolicyDefaults, domain: string): EffectivePolicy {
  const entry = matchingEntry(policies, domain);
  const envCalendar = calendarOf(defaults.LOCAL_RETENTION_DAYS, defaults.LOCAL_RETENTION_WEEKS, defaults.LOCAL_RETENTION_MONTHS);
  const keep = entry?.chainsToKeep;
  const mirrorConfigured = defaults.RSYNC_BACKUP_PATH !== undefined || defaults.MIRROR_RCLONE_TARGETS.length > 0;
  return {
    domain,
    matchedBy: entry?.match,
    schedule: entry?.schedule ?? defaults.BACKUP_SCHEDULE,
    maxBackupsPerChain: entry?.maxBackupsPerChain ?? defaults.MAX_BACKUPS_PER_CHAIN,
    // A count replaces LOCAL_BACKUP_CHAINS_TO_KEEP; a calendar replaces LOCAL_RETENTION_* (the count stays the floor).
    chainsToKeep: typeof keep === "number" ? keep : defaults.LOCAL_BACKUP_CHAINS_TO_KEEP,
    calendar: keep !== undefined && typeof keep !== "number" ? calendarOf(keep.daily, keep.weekly, keep.monthly) : envCalendar,
    mirrorChainsToKeep: entry?.mirrorChainsToKeep ?? defaults.RSYNC_BACKUP_CHAINS_TO_KEEP,
    rpoMinutes: entry?.rpoMinutes ?? backupRpo(defaults).minutes,
    excludeDisks: entry?.excludeDisks ?? [],
    mirror: mirrorConfigured && entry?.mirror !== false,
    hooks: { ...(entry?.hooks?.pre ? { pre: entry.hooks.pre } : {}), ...(entry?.hooks?.post ? { post: entry.hooks.post } : {}) },
  };
}

function calendarOf(days: number, weeks: number, months: number): EffectivePolicy["calendar"] {
  return days + weeks + months > 0 ? { days, weeks, months } : undefined;
}

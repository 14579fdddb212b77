import { readFile } from "node:fs/promises";
import { domainSelection, NO_DOMAIN_POLICIES, parseDomainPolicies, PolicyFileError, policyFor, type DomainPolicies, type EffectivePolicy } from "@vmbs/config";
import { describeAge } from "@vmbs/status";
import { createLibvirt } from "@vmbs/virt";
import { exitStatus } from "../exit-reasons.js";
import { loadConfigOrExit } from "../runtime.js";

export interface PolicyCommandOptions {
  /** The domains to show; default every persistent domain of LIBVIRT_URI. */
  domains: string[];
  json: boolean;
}

/** How long `vmbs policy` waits for libvirt's list of domains. */
const LIBVIRT_TIMEOUT_MS = 30_000;

/** One line per domain a person reads: where its policy comes from and what it says. */
export function renderPolicies(policies: ReadonlyArray<EffectivePolicy & { ignored: boolean }>): string {
  const rows = policies.map((p) => [
    p.domain + (p.ignored ? " (ignored)" : ""),
    p.matchedBy === undefined ? "(environment)" : `match ${p.matchedBy}`,
    p.schedule ?? "(none)",
    String(p.maxBackupsPerChain),
    p.calendar ? `${p.chainsToKeep} + ${p.calendar.days}d/${p.calendar.weeks}w/${p.calendar.months}m` : String(p.chainsToKeep),
    p.mirror ? `on, keep ${p.mirrorChainsToKeep}` : "off",
    describeAge(p.rpoMinutes * 60_000),
    [p.hooks.pre ? "pre" : "", p.hooks.post ? "post" : ""].filter(Boolean).join("+") || "-",
  ]);
  const header = ["DOMAIN", "FROM", "SCHEDULE", "CHAIN", "KEEP", "MIRROR", "RPO", "HOOKS"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * `vmbs policy`: the effective policy of every domain of this host (or of those named), from VMBS_POLICY_FILE and
 * the environment. Reads the file and libvirt only; changes nothing. Exit 0, 2 bad usage, 78 a bad file, 69 libvirt down.
 */
export async function policyCommand(o: PolicyCommandOptions): Promise<number> {
  const config = loadConfigOrExit(process.env);
  let policies: DomainPolicies = NO_DOMAIN_POLICIES;
  if (config.VMBS_POLICY_FILE) {
    try {
      policies = parseDomainPolicies(await readFile(config.VMBS_POLICY_FILE, "utf8"), config.VMBS_POLICY_FILE);
    } catch (err) {
      const message = err instanceof PolicyFileError ? err.message : `${config.VMBS_POLICY_FILE}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      process.stderr.write(`vmbs policy: ${message}\n`);
      return exitStatus.config;
    }
  }
  let domains = o.domains;
  if (domains.length === 0) {
    const libvirt = createLibvirt(config.LIBVIRT_URI, { timeoutMs: LIBVIRT_TIMEOUT_MS });
    try {
      domains = (await libvirt.listPersistentDomains()).map((d) => d.name).sort();
    } catch (err) {
      process.stderr.write(`vmbs policy: cannot list the domains of ${config.LIBVIRT_URI}: ${(err as Error).message}\n  (name them with --domain to see their policy anyway)\n`);
      return exitStatus.natsUnavailable;
    } finally {
      await libvirt.close();
    }
  }
  const selection = domainSelection(config);
  const effective = domains.map((d) => ({ ...policyFor(policies, config, d), ignored: !selection.scheduled(d) }));
  if (o.json) process.stdout.write(`${JSON.stringify({ file: config.VMBS_POLICY_FILE ?? null, domains: effective })}\n`);
  else {
    process.stdout.write(`policy file: ${config.VMBS_POLICY_FILE ?? "(none: VMBS_POLICY_FILE is unset, the environment decides)"}\n`);
    process.stdout.write(`${effective.length > 0 ? renderPolicies(effective) : "(no domains)"}\n`);
  }
  return 0;
}

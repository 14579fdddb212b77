import { minimatch } from "minimatch";
import type { Config } from "./config-schema.js";

/**
 * Whether `pattern` names `domain`: the exact name, or a shell glob matching it. Only *, ? and [...] are special
 * (no braces or extglobs): what a person expects of a shell glob on names.
 */
export function nameOrGlobMatches(pattern: string, domain: string): boolean {
  return pattern === domain || minimatch(domain, pattern, { dot: true, nobrace: true, noext: true });
}

/** Which domains of the host this agent backs up: VM_ALLOWED_LIST (empty = all) minus VM_IGNORED_LIST. */
export interface DomainSelection {
  /** True when the domain is backed up, checked and kept by this host's agent. */
  scheduled(domain: string): boolean;
  /** Why a domain is not scheduled, naming the variable that decides it; undefined when it is scheduled. */
  whyNotScheduled(domain: string): string | undefined;
}

export function domainSelection(config: Pick<Config, "VM_IGNORED_LIST" | "VM_ALLOWED_LIST">): DomainSelection {
  const ignored = new Set(config.VM_IGNORED_LIST);
  const allowed = config.VM_ALLOWED_LIST;
  const whyNotScheduled = (domain: string): string | undefined => {
    if (ignored.has(domain)) return "listed in VM_IGNORED_LIST";
    if (allowed.length > 0 && !allowed.some((p) => nameOrGlobMatches(p, domain))) return "not matched by VM_ALLOWED_LIST";
    return undefined;
  };
  return { whyNotScheduled, scheduled: (domain) => whyNotScheduled(domain) === undefined };
}

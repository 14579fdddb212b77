import { readFile } from "node:fs/promises";
import { unwatchFile, watchFile } from "node:fs";
import { NO_DOMAIN_POLICIES, parseDomainPolicies, PolicyFileError, type DomainPolicies } from "./domain-policy.js";

/** The per-domain policies in effect, kept current with VMBS_POLICY_FILE. */
export interface PolicySource {
  current(): DomainPolicies;
  /** Reads the file again now (what SIGHUP does); resolves true when the new version is in effect. */
  reload(): Promise<boolean>;
  /** Calls `listener` with each new version put in effect; returns the unsubscribe. */
  onChange(listener: (policies: DomainPolicies) => void): () => void;
  close(): void;
}

/** No per-domain policy: VMBS_POLICY_FILE unset, or a service started without the process's source (tests, benches). */
export const noPolicySource: PolicySource = {
  current: () => NO_DOMAIN_POLICIES,
  reload: async () => true,
  onChange: () => () => undefined,
  close: () => undefined,
};

export interface PolicySourceOptions {
  /** VMBS_POLICY_FILE; undefined = no per-domain policy. */
  path: string | undefined;
  /** A new version is in effect. */
  onReload?(policies: DomainPolicies): void;
  /** A changed file that cannot be used: the previous version stays in effect. */
  onError?(err: PolicyFileError): void;
  /** How often the file's mtime is looked at. Default 2 s. */
  pollMs?: number;
  /** Reload on SIGHUP too (a long-running service). Default true. */
  sighup?: boolean;
}

async function readPolicies(path: string): Promise<DomainPolicies> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new PolicyFileError(path, [`cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseDomainPolicies(text, path);
}

/**
 * Reads the policy file once (a bad one stops the start with its problems listed), then again whenever it changes
 * or on SIGHUP. A changed file that is bad is reported and ignored: a typo never drops the policies in effect.
 */
export async function openPolicySource(o: PolicySourceOptions): Promise<PolicySource> {
  const path = o.path;
  if (path === undefined) return noPolicySource;
  let policies = await readPolicies(path);
  const listeners = new Set<(policies: DomainPolicies) => void>();
  const reload = async (): Promise<boolean> => {
    try {
      policies = await readPolicies(path);
      o.onReload?.(policies);
      for (const listener of listeners) listener(policies);
      return true;
    } catch (err) {
      if (!(err instanceof PolicyFileError)) throw err;
      o.onError?.(err);
      return false;
    }
  };
  // Polling, not fs.watch: editors replace the file (a new inode), which an inotify watch on the old one misses.
  const onChange = (now: { mtimeMs: number }, before: { mtimeMs: number }) => {
    if (now.mtimeMs !== before.mtimeMs) void reload();
  };
  watchFile(path, { interval: o.pollMs ?? 2_000, persistent: false }, onChange);
  const onHangup = () => void reload();
  if (o.sighup !== false) process.on("SIGHUP", onHangup);
  return {
    current: () => policies,
    reload,
    onChange: (listener) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    close: () => {
      unwatchFile(path, onChange);
      process.off("SIGHUP", onHangup);
    },
  };
}

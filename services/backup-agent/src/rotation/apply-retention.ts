import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { decideRetention, isActiveChainFolder, parseArchiveFolderName, readChainPoints, removeToolFiles, setFolderAside, type CalendarPolicy, type ChainPoints, type RetentionDecision } from "@vmbs/chain";
import { announce, type RotationDeps, type StepContext } from "./rotation-deps.js";

/** Options of {@link applyRetention}. */
export interface RetentionOptions extends StepContext {
  domain: string;
  /** LOCAL_BACKUP_CHAINS_TO_KEEP: archived chains kept by count; 0 keeps all. */
  keep: number;
  /** Opt-in calendar tiers (LOCAL_RETENTION_DAYS/WEEKS/MONTHS via `calendarPolicyOf`). Default off. */
  calendar?: CalendarPolicy;
}

/** What one retention pass did. */
export interface RetentionSummary {
  domain: string;
  /** Archives of the domain found, newest first. */
  archives: string[];
  kept: string[];
  deleted: string[];
  /** Deletions that failed; the folder may be partly removed. */
  failed: { name: string; error: string }[];
  /** Archives that held files the tool did not make: emptied of its own files and moved aside to `to`. */
  setAside: { name: string; to: string; kept: string[] }[];
}

/** Directory names in the root. Symlinks are not directories here: a link is never followed into a delete. */
async function folderNames(root: string): Promise<string[]> {
  return (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
}

/**
 * Every folder that is some domain's active chain: this host's libvirt domains, and (for domains of other hosts
 * sharing the root) any folder `X` holding `X.cpt`. Only archive-looking names need the second check.
 */
async function activeChainsAmong(deps: RotationDeps, domain: string, names: readonly string[]): Promise<string[]> {
  const libvirtNames = new Set(await deps.domainNames());
  const lookAlikes = names.filter((n) => parseArchiveFolderName(domain, n) !== null);
  const withCpt = await Promise.all(lookAlikes.map(async (n) => ((await isActiveChainFolder(deps.backupRoot, n)) ? n : undefined)));
  return [...names.filter((n) => libvirtNames.has(n)), ...withCpt.filter((n): n is string => n !== undefined)];
}

/** The facts retention needs beyond the folder names: the active chains among them. */
export interface RetentionFacts {
  /** Every folder name in the backup root. */
  names: string[];
  activeChains: string[];
}

/** Reads the backup root's folder names and which of them are active chains (never deleted). */
export async function readRetentionFacts(deps: RotationDeps, domain: string): Promise<RetentionFacts> {
  const names = await folderNames(deps.backupRoot);
  return { names, activeChains: await activeChainsAmong(deps, domain, names) };
}

/**
 * decideRetention (libs/chain) over the backup root as it is (`facts` when already read), or with one `extra`
 * archive added: a dry run's would-be archive, whose restore points are read from the folder `extra.from`. Reads only.
 */
export async function readRetentionDecision(
  deps: RotationDeps,
  o: RetentionOptions,
  facts?: RetentionFacts,
  extra?: { name: string; from: string },
): Promise<RetentionFacts & { decision: RetentionDecision }> {
  const { names, activeChains } = facts ?? (await readRetentionFacts(deps, o.domain));
  const all = extra ? [...names, extra.name] : names;
  let chains: ChainPoints[] | undefined;
  if (o.calendar) {
    const archives = names.filter((n) => parseArchiveFolderName(o.domain, n) !== null && !activeChains.includes(n));
    chains = await Promise.all(archives.map((n) => readChainPoints(deps.backupRoot, o.domain, n)));
    if (extra) chains.push({ ...(await readChainPoints(deps.backupRoot, o.domain, extra.from)), name: extra.name });
  }
  const decision = decideRetention({
    domain: o.domain,
    folderNames: all,
    activeChains,
    keep: o.keep,
    ...(o.calendar ? { calendar: o.calendar } : {}),
    ...(chains ? { chains } : {}),
    now: deps.now?.() ?? Date.now(),
    ...(deps.timeZone ? { timeZone: deps.timeZone } : {}),
  });
  return { names, activeChains, decision };
}

/**
 * Local retention for one domain (seed-behaviour.md §6, plus opt-in calendar tiers): deletes the archived
 * chains that `decideRetention` lets go, each logged and announced as `pruned` with its reason. Never
 * touches an active chain folder (of any domain) or a folder outside the exact archive pattern (pinned by
 * renaming). Deleting removes only the tool's own files (removeToolFiles); an archive that also holds other
 * files keeps them and is moved aside as `<name>.foreign-files`, with an `attention` event naming them.
 * Hold the chain lease of the domain around this call.
 */
export async function applyRetention(deps: RotationDeps, o: RetentionOptions): Promise<RetentionSummary> {
  const { decision, activeChains } = await readRetentionDecision(deps, o);
  const summary: RetentionSummary = { domain: o.domain, archives: decision.archives, kept: decision.keep.map((v) => v.name), deleted: [], failed: [], setAside: [] };
  deps.logger.info({ domain: o.domain, archives: decision.archives.length, keep: summary.kept, delete: decision.delete.map((v) => v.name) }, "local retention decided");

  for (const { name, reason } of decision.delete) {
    // Defence in depth: re-check right before the irreversible calls.
    if (name === o.domain || activeChains.includes(name) || parseArchiveFolderName(o.domain, name) === null) continue;
    const release = await deps.lockFolder(name).catch((err: unknown) => {
      deps.logger.warn({ err, folder: name }, "could not take the folder's lease");
      return undefined;
    });
    if (!release) {
      summary.failed.push({ name, error: "its chain lease is held by another process" });
      await announce(deps, o, "retention", { type: "failed", domain: o.domain, step: `delete-archive ${name}`, folders: [name], reason: `${name} was not deleted (${reason}): its folder's chain lease is held or unavailable, so something may be writing it; the next retention tries again` });
      continue;
    }
    try {
      const { kept, folderRemoved } = await removeToolFiles(join(deps.backupRoot, name), o.domain);
      if (folderRemoved) {
        summary.deleted.push(name);
        await announce(deps, o, "retention", { type: "pruned", domain: o.domain, step: `delete-archive ${name}`, folders: [name], reason });
        continue;
      }
      const to = await setFolderAside(deps.backupRoot, name);
      summary.setAside.push({ name, to, kept });
      await announce(deps, o, "retention", { type: "pruned", domain: o.domain, step: `delete-archive ${name} (own files only) → moved aside as ${to}`, folders: [to], reason });
      await announce(deps, o, "retention", {
        type: "attention",
        domain: o.domain,
        step: `delete-archive ${name}`,
        folders: [to],
        reason: `the archive ${name} held files virtnbdbackup did not write (${kept.join(", ")}). They were not deleted: only the backup's own files were removed and the folder was moved aside as ${to}, which retention never touches.`,
      });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      summary.failed.push({ name, error });
      await announce(deps, o, "retention", {
        type: "failed",
        domain: o.domain,
        step: `delete-archive ${name}`,
        folders: [name],
        reason: `could not delete ${name} (${reason}): ${error}`,
      });
    } finally {
      await release().catch((err: unknown) => deps.logger.warn({ err, folder: name }, "could not release the folder's lease"));
    }
  }
  return summary;
}

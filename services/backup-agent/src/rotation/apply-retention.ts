import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { decideRetention, parseArchiveFolderName, readChainPoints, type CalendarPolicy, type ChainPoints } from "@vmbs/chain";
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
}

/** Directory names in the root. Symlinks are not directories here: a link is never followed into a delete. */
async function folderNames(root: string): Promise<string[]> {
  return (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
}

/**
 * Local retention for one domain (seed-behaviour.md §6, plus opt-in calendar tiers): deletes the archived
 * chains that `decideRetention` lets go, each logged and announced as `pruned` with its reason. Never
 * touches the active chain folder or a folder outside the exact archive pattern (pinned by renaming).
 * Hold the chain lease of the domain around this call.
 */
export async function applyRetention(deps: RotationDeps, o: RetentionOptions): Promise<RetentionSummary> {
  const names = await folderNames(deps.backupRoot);
  let chains: ChainPoints[] | undefined;
  if (o.calendar) {
    const archives = names.filter((n) => parseArchiveFolderName(o.domain, n) !== null);
    chains = await Promise.all(archives.map((n) => readChainPoints(deps.backupRoot, o.domain, n)));
  }
  const decision = decideRetention({
    domain: o.domain,
    folderNames: names,
    keep: o.keep,
    ...(o.calendar ? { calendar: o.calendar } : {}),
    ...(chains ? { chains } : {}),
    now: deps.now?.() ?? Date.now(),
    ...(deps.timeZone ? { timeZone: deps.timeZone } : {}),
  });
  const summary: RetentionSummary = { domain: o.domain, archives: decision.archives, kept: decision.keep.map((v) => v.name), deleted: [], failed: [] };
  deps.logger.info({ domain: o.domain, archives: decision.archives.length, keep: summary.kept, delete: decision.delete.map((v) => v.name) }, "local retention decided");

  for (const { name, reason } of decision.delete) {
    // Defence in depth: re-check right before the one irreversible call.
    if (name === o.domain || parseArchiveFolderName(o.domain, name) === null) continue;
    try {
      await rm(join(deps.backupRoot, name), { recursive: true });
      summary.deleted.push(name);
      await announce(deps, o, "retention", { type: "pruned", domain: o.domain, step: `delete-archive ${name}`, folders: [name], reason });
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
    }
  }
  return summary;
}

import { archiveChainFolder, chainFolderPath, isCopyBackup, isEffectivelyEmpty, readChainFolder, type CalendarPolicy, type ChainFolder } from "@vmbs/chain";
import { announce, type RotationDeps, type StepContext } from "./rotation-deps.js";
import { applyRetention, type RetentionSummary } from "./apply-retention.js";

/** Whether the active chain must be archived before the next backup, and why (for logs and events). */
export interface RotationDecision {
  rotate: boolean;
  reason: string;
}

/**
 * Pure rotation rule (seed-behaviour.md §5.2): with `max` > 0, rotate when the `.cpt` list holds ≥ `max`
 * checkpoints, or holds none while the folder is a copy backup (it cannot be continued incrementally).
 * `force` (the seed's initial `--create-new` mode) rotates any folder holding data. Anything unclear — a
 * missing or unreadable `.cpt` next to a full backup — is left to the chain check, never archived here.
 */
export function needsRotation(folder: ChainFolder, max: number, force = false): RotationDecision {
  if (!folder.exists || isEffectivelyEmpty(folder)) return { rotate: false, reason: "no chain data in the active folder" };
  if (force) return { rotate: true, reason: "a new chain was requested (forced rotation)" };
  if (max === 0) return { rotate: false, reason: "MAX_BACKUPS_PER_CHAIN=0: chains never rotate" };
  if (folder.cptError) return { rotate: false, reason: `checkpoint list unreadable (${folder.cptError}): left to the chain check` };
  const count = folder.cpt?.length ?? 0;
  if (count >= max) return { rotate: true, reason: `the chain holds ${count} checkpoints, MAX_BACKUPS_PER_CHAIN=${max}` };
  if (count === 0 && isCopyBackup(folder))
    return { rotate: true, reason: "the folder holds a copy backup without checkpoints, which cannot be continued" };
  if (folder.cpt === null) return { rotate: false, reason: "no checkpoint list next to the data: left to the chain check" };
  return { rotate: false, reason: `the chain holds ${count} of ${max} checkpoints` };
}

/** Options of {@link rotateChain}. */
export interface RotateOptions extends StepContext {
  domain: string;
  /** MAX_BACKUPS_PER_CHAIN; 0 = never rotate (unless forced). */
  maxBackupsPerChain: number;
  /** LOCAL_BACKUP_CHAINS_TO_KEEP for the retention that follows an archive; 0 keeps all. */
  keep: number;
  /** Opt-in calendar tiers for that retention. Default off. */
  calendar?: CalendarPolicy;
  /** Rotate any folder with data (initial backups). Default false. */
  force?: boolean;
}

/** What one rotation did. */
export interface RotationSummary {
  domain: string;
  rotated: boolean;
  reason: string;
  /** The new archive folder name, when rotated. */
  archive?: string;
  /** The local retention that ran right after the archive (the seed runs it only then). */
  retention?: RetentionSummary;
}

/**
 * Rotation before a backup: when {@link needsRotation} says so, archives the active chain (a rename in place,
 * announced as `archived`) so the next `auto` backup starts a full one, then applies local retention.
 * Hold the domain's chain lease around this call.
 */
export async function rotateChain(deps: RotationDeps, o: RotateOptions): Promise<RotationSummary> {
  const folder = await readChainFolder(chainFolderPath(deps.backupRoot, o.domain), o.domain);
  const decision = needsRotation(folder, o.maxBackupsPerChain, o.force ?? false);
  if (!decision.rotate) {
    deps.logger.debug({ domain: o.domain, reason: decision.reason }, "no rotation");
    return { domain: o.domain, rotated: false, reason: decision.reason };
  }
  const archive = await archiveChainFolder(deps.backupRoot, o.domain, deps.timeZone);
  await announce(deps, o, "rotation", {
    type: "archived",
    domain: o.domain,
    step: `archive → ${archive}`,
    folders: [archive],
    reason: `rotation: ${decision.reason}; the next backup starts a new chain`,
  });
  const retention = await applyRetention(deps, { ...o, trigger: o.trigger ?? "rotation" });
  return { domain: o.domain, rotated: true, reason: decision.reason, archive, retention };
}

import type { BackupLevel } from "@vmbs/contracts";
import type { ChainFolder } from "./chain-folder.js";
import { hasChain, isCopyBackup, isEffectivelyEmpty } from "./chain-files.js";

/*
 * The one place that decides whether the active chain `<root>/<domain>` ends and its folder is archived.
 * Three callers end chains, and each asks here:
 *
 *   caller                                  | the chain ends when                              | its folder
 *   ----------------------------------------|--------------------------------------------------|----------------------------
 *   a backup (agent plan-backup.ts)         | a full is requested on a chain, or the folder    | archived before the full
 *     → archiveBeforeBackup                 | holds data but no chain virtnbdbackup continues  | (one chain per folder)
 *   rotation (agent rotate-chain.ts)        | ≥ MAX_BACKUPS_PER_CHAIN checkpoints, a copy      | archived
 *     → needsRotation                       | backup without checkpoints, or forced            |
 *   the chain check (plan-chain.ts)         | a planner rule ends it (new-chain,               | folderAtChainEnd: archived when
 *     → folderAtChainEnd                    | delete-partial-chain)                            | restorable, deleted when not,
 *                                           |                                                  | nothing when empty or absent
 *
 * Archiving is always a rename in place to `<domain>.<timestamp>` (archive-chain.ts); retention
 * (decide-retention.ts) later decides which archives go.
 */

/** A chain virtnbdbackup can continue: a finished full backup and a non-empty checkpoint list. */
export function hasContinuableChain(folder: ChainFolder): boolean {
  return hasChain(folder) && (folder.cpt?.length ?? 0) > 0;
}

/**
 * Whether a backup at `requested` level must archive the folder first: a full never writes into an existing
 * chain (a full elsewhere would delete that chain's checkpoints), and data without a usable chain (e.g. a copy
 * backup) would make the engine refuse a full. Logs of failed runs alone do not count (isEffectivelyEmpty).
 */
export function archiveBeforeBackup(folder: ChainFolder, requested: BackupLevel): boolean {
  if (hasContinuableChain(folder)) return requested === "full";
  return folder.exists && !isEffectivelyEmpty(folder);
}

/** Whether the active chain must be archived before the next backup, and why (for logs and events). */
export interface RotationDecision {
  rotate: boolean;
  reason: string;
}

/**
 * Rotation rule (seed-behaviour.md §5.2): with `max` > 0, rotate when the `.cpt` list holds ≥ `max`
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

/** What happens to the folder of a chain the chain check ends. */
export type FolderFate = "archive" | "delete" | "none";

/**
 * A chain the planner ends keeps its folder as an archive while anything in it can be restored; a folder
 * with no complete restore point is deleted; an absent or empty folder needs nothing.
 */
export function folderAtChainEnd(folder: ChainFolder, restorable: boolean): FolderFate {
  if (!folder.exists || folder.files.length === 0) return "none";
  return restorable ? "archive" : "delete";
}

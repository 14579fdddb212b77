import type { BackupLevel } from "@vmbs/contracts";
import type { ChainFolder, FileStamps } from "./chain-folder.js";
import type { ChainPlan, ChainSnapshot, ChainStep } from "./chain-snapshot.js";
import type { IntegrityFault } from "./check-integrity.js";
import { hasChain, isCopyBackup, isEffectivelyEmpty } from "./chain-files.js";
import { selectArchivesToDelete } from "./retention.js";

/*
 * The one place that decides whether a chain ends: whether the active chain `<root>/<domain>` (or its mirror
 * copy) is archived, deleted or kept. Callers only carry out what is decided here.
 *
 *   caller                                  | decision here            | the chain ends when / decided
 *   ----------------------------------------|--------------------------|-----------------------------------------------
 *   a backup (agent plan-backup.ts)         | archiveBeforeBackup      | a full is requested on a chain, or the folder
 *                                           |                          | holds data but no chain virtnbdbackup continues:
 *                                           |                          | archived before the full (one chain per folder)
 *   rotation (agent rotate-chain.ts)        | needsRotation            | ≥ MAX_BACKUPS_PER_CHAIN checkpoints, a copy
 *                                           |                          | backup without checkpoints, or forced: archived
 *   the chain check (plan-chain.ts)         | folderAtChainEnd         | a planner rule ends it (new-chain,
 *                                           |                          | delete-partial-chain): archived when restorable,
 *                                           |                          | deleted when not, nothing when empty or absent
 *   the data check (agent check-chain.ts)   | endChainOnDamagedData    | a kept chain has a damaged data file: archived
 *                                           |                          | as is, no prune, a new full
 *   a full backup disk (agent               | keepChainOnFullDisk      | never: a plan that would end the chain becomes
 *     check-chain.ts, after a failed run)   |                          | needs-user; an interrupted first backup is still
 *                                           |                          | deleted, its full waits
 *   an in-place restore (restore            | chainEndAfterRestore     | always: every libvirt checkpoint is deleted
 *     run-restore.ts)                       |                          | (metadata), the active folder archived if present
 *   a mirror sync (mirror sync-chains.ts)   | mirrorCopyFate           | the mirror copy holds another chain (archived,
 *                                           |                          | then the transfer) or the local chain is gone
 *                                           |                          | (archived, nothing transferred)
 *   mirror retention (mirror-chain.ts,      | mirrorKeepAfterArchive,  | which archives on the mirror target go after
 *     after archiving the mirror copy)      | mirrorArchivesToDelete   | that archive: beyond the newest
 *                                           |                          | RSYNC_BACKUP_CHAINS_TO_KEEP (none when the local
 *                                           |                          | chain is gone), never an active chain
 *
 * A dry run (`vmbs retention --dry-run`: agent plan-retention.ts, mirror plan-mirror.ts) asks the same
 * functions and reports their answers as `planned` events instead of carrying them out.
 *
 * Archiving is always a rename in place to `<domain>.<timestamp>` (archive-chain.ts, mirror-chain.ts); local
 * retention (decide-retention.ts) later decides which local archives go.
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

/** Leftover cleanup (job, stale qemu-nbd, /var/tmp): touches no chain, so every rewritten plan keeps it. */
function leadSteps(plan: ChainPlan): ChainStep[] {
  return plan.steps.filter((st) => st.op === "abort-job" || st.op === "kill-qemu-nbd" || st.op === "clean-tmp");
}

/**
 * A chain the planner keeps, whose data check found a damaged file: it ends, archived as is (it still restores up
 * to the checkpoint before the damage). No prune steps: checkpoints and bitmaps match the chain, and the new
 * full deletes the old checkpoints itself.
 */
export function endChainOnDamagedData(s: ChainSnapshot, kept: ChainPlan, fault: IntegrityFault): ChainPlan {
  return {
    kind: "new-chain",
    reason:
      `The data of checkpoint ${fault.checkpoint} of ${s.domain} is damaged: ${fault.file}: ${fault.problem}. ` +
      `The chain in ${s.folder.dir} restores correctly only up to the checkpoint before it; it is archived as is and a new chain starts with a full backup.`,
    steps: [...leadSteps(kept), { op: "archive-folder" }, { op: "start-new-chain" }],
  };
}

/** Steps that end a chain: on a full disk neither an archive-and-full nor deleting the chain is right. */
const ENDS_CHAIN = new Set<ChainStep["op"]>(["archive-folder", "delete-folder", "start-new-chain"]);

/**
 * The plan after a backup failed on a full disk. A repair in place (dropping the unfinished checkpoint) or a
 * keep stands, and so does deleting an interrupted first backup (minus starting its full now); a plan that
 * would end a chain — archive it and start a full on the same full disk, which cannot fit either — becomes
 * needs-user: only the leftovers outside the chain are cleaned up.
 */
export function keepChainOnFullDisk(plan: ChainPlan, space: string): ChainPlan {
  if (!plan.steps.some((st) => ENDS_CHAIN.has(st.op))) return plan;
  if (plan.kind === "delete-partial-chain") {
    // An interrupted first backup is no chain: removing its files frees space; its full waits for the next run.
    return {
      ...plan,
      reason: `${plan.reason} On the full disk (${space}) that full waits for the next backup run.`,
      steps: plan.steps.filter((st) => st.op !== "start-new-chain"),
    };
  }
  return {
    kind: "needs-user",
    reason:
      `backup disk full: ${space}, the chain is kept. The check would end it (${plan.reason}), but a new full ` +
      `backup cannot fit on a full disk either, so nothing is archived and no full is started: free space on the ` +
      `backup disk (or lower LOCAL_BACKUP_CHAINS_TO_KEEP); the next backup checks the chain again.`,
    steps: leadSteps(plan),
  };
}

/** How an in-place restore ends the active chain. */
export interface RestoreChainEnd {
  /** libvirt checkpoints to delete (metadata only), newest first. */
  deleteCheckpoints: string[];
  /** Whether the active chain folder is archived. */
  archiveFolder: boolean;
}

/**
 * After an in-place restore the images carry no bitmaps, so no checkpoint and no chain matches the disks any
 * more: every libvirt checkpoint goes (newest first, as libvirt lists them oldest first) and the active chain
 * folder, when there is one, is archived; the next backup starts a new chain.
 */
export function chainEndAfterRestore(libvirtCheckpoints: readonly string[], activeFolderExists: boolean): RestoreChainEnd {
  return { deleteCheckpoints: [...libvirtCheckpoints].reverse(), archiveFolder: activeFolderExists };
}

/**
 * Whether the mirror copy holds another chain than the local folder: a data file on the mirror that the local
 * chain lacks or holds with another size or mtime. A chain's data files are written once, so this means the
 * local chain rotated (or was archived by a check) since the last sync.
 */
function mirrorHoldsOtherChain(local: FileStamps, mirror: FileStamps): boolean {
  for (const [path, m] of mirror) {
    if (!/\.data$/.test(path)) continue;
    const l = local.get(path);
    if (!l || l.size !== m.size || l.mtimeS !== m.mtimeS) return true;
  }
  return false;
}

/**
 * What a mirror sync does with the mirror copy `<target>/<domain>` before copying the local chain
 * (undefined or empty = no such folder):
 * - "continue": no copy yet, or a copy of the same chain; the transfer brings it up to date.
 * - "archive": the copy holds another chain; it is archived (with mirror retention) before the transfer.
 * - "archive-only": the local chain is gone (deleted as unusable); the copy is archived without retention
 *   (the seed's case) and there is nothing to transfer.
 * - "nothing": neither side holds files; there is nothing to mirror.
 */
export type MirrorCopyFate = "continue" | "archive" | "archive-only" | "nothing";

export function mirrorCopyFate(local: FileStamps | undefined, mirror: FileStamps | undefined): MirrorCopyFate {
  const hasMirror = mirror !== undefined && mirror.size > 0;
  if (!local || local.size === 0) return hasMirror ? "archive-only" : "nothing";
  return mirror && mirrorHoldsOtherChain(local, mirror) ? "archive" : "continue";
}

/**
 * How many mirror archives of the domain a sync keeps right after archiving the copy, by its fate: the domain's
 * `mirrorChainsToKeep` (RSYNC_BACKUP_CHAINS_TO_KEEP) when the local chain rotated; 0 (= keep all) when the local
 * chain is gone, so its last copies are not pruned with it (the seed's case); undefined when the copy is not
 * archived at all ("continue", "nothing"), so no mirror retention runs.
 */
export function mirrorKeepAfterArchive(fate: MirrorCopyFate, mirrorChainsToKeep: number): number | undefined {
  if (fate === "archive") return mirrorChainsToKeep;
  if (fate === "archive-only") return 0;
  return undefined;
}

/**
 * Which archives of `domain` on the mirror target a mirror sync deletes right after archiving the copy
 * (`folderNames`: the target root's folders after that archive): those beyond the newest `keep`
 * (RSYNC_BACKUP_CHAINS_TO_KEEP; 0 keeps all), except any folder in `activeChains` — some domain's active chain
 * (`X` holding `X.cpt`) merely named like an archive. Such a look-alike still takes its place among the newest
 * `keep`. Deleting removes only the tool's own files (removeToolFiles), so an archive with foreign files stays.
 */
export function mirrorArchivesToDelete(domain: string, folderNames: readonly string[], activeChains: readonly string[], keep: number): string[] {
  return selectArchivesToDelete(domain, folderNames, keep).filter((name) => !activeChains.includes(name));
}

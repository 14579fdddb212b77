import { archiveChainFolder, chainFolderPath, needsRotation, readChainFolder, type CalendarPolicy, type ChainFolder } from "@vmbs/chain";
import { announce, type RotationDeps, type StepContext } from "./rotation-deps.js";
import { applyRetention, type RetentionSummary } from "./apply-retention.js";

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
  /** The active chain folder as read, when not rotated: still what is on disk, for the steps that follow. */
  unchanged?: ChainFolder;
}

/**
 * Rotation before a backup: when needsRotation (libs/chain chain-end.ts) says so, archives the active chain (a rename in place,
 * announced as `archived`) so the next `auto` backup starts a full one, then applies local retention.
 * Hold the domain's chain lease around this call.
 */
export async function rotateChain(deps: RotationDeps, o: RotateOptions): Promise<RotationSummary> {
  const folder = await readChainFolder(chainFolderPath(deps.backupRoot, o.domain), o.domain, deps.chainFiles);
  const decision = needsRotation(folder, o.maxBackupsPerChain, o.force ?? false);
  if (!decision.rotate) {
    deps.logger.debug({ domain: o.domain, reason: decision.reason }, "no rotation");
    return { domain: o.domain, rotated: false, reason: decision.reason, unchanged: folder };
  }
  const archive = await archiveChainFolder(deps.backupRoot, o.domain, deps.timeZone, folder);
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

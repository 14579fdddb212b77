import { mirrorCopyFate, mirrorKeepAfterArchive, type FileStamps, type MirrorCopyFate } from "@vmbs/chain";
import { planMirrorRotation } from "./mirror-chain.js";
import type { MirrorStore } from "./mirror-store.js";

/** What the next sync of one domain to one target would do to the mirror; nothing is changed to find out. */
export interface MirrorSyncPlan {
  fate: MirrorCopyFate;
  /** The archive name the mirror copy would get; absent when it would not be archived. */
  wouldArchiveTo?: string;
  /** Mirror archives that sync would then delete. */
  wouldPrune?: string[];
  /** The plan in words. */
  reason: string;
}

export interface MirrorPlanInput {
  store: MirrorStore;
  /** The target's root folder. */
  root: string;
  domain: string;
  /** The local chain's and the mirror copy's files (undefined: no such folder). */
  local: FileStamps | undefined;
  mirror: FileStamps | undefined;
  /** Folder names of the local backup root (to name the archive like its local twin). */
  localNames: readonly string[];
  mirrorChainsToKeep: number;
  timeZone?: string;
}

/**
 * A mirror dry run: the same decisions a sync takes (mirrorCopyFate, mirrorKeepAfterArchive and the mirror
 * retention of planMirrorRotation), read only.
 */
export async function planMirrorSync(i: MirrorPlanInput): Promise<MirrorSyncPlan> {
  const fate = mirrorCopyFate(i.local, i.mirror);
  const keep = mirrorKeepAfterArchive(fate, i.mirrorChainsToKeep);
  if (keep === undefined) {
    const reason =
      fate === "nothing"
        ? "neither a local chain nor a mirror copy exists: the next sync has nothing to mirror"
        : i.mirror === undefined || i.mirror.size === 0
          ? "no mirror copy yet: the next sync copies the chain; nothing is archived or deleted on the mirror"
          : "the mirror copy holds the same chain as the local folder: the next sync brings it up to date; nothing is archived or deleted on the mirror";
    return { fate, reason };
  }
  const plan = await planMirrorRotation(i.store, { root: i.root, domain: i.domain, mirror: i.mirror!, localNames: i.localNames, keep, timeZone: i.timeZone });
  const why =
    fate === "archive"
      ? "the mirror copy holds another chain than the local folder (the local chain was archived since the last sync)"
      : "the local chain is gone";
  const deletes =
    plan.toDelete.length > 0
      ? `, then deletes ${plan.toDelete.length} mirror archive(s) beyond the newest ${keep} (mirrorChainsToKeep): ${plan.toDelete.join(", ")}`
      : keep === 0
        ? " and deletes no mirror archive"
        : ` and deletes no mirror archive (at most ${keep} kept, mirrorChainsToKeep)`;
  return { fate, wouldArchiveTo: plan.archivedTo, wouldPrune: plan.toDelete, reason: `${why}: the next sync archives the mirror copy as ${plan.archivedTo}${deletes}` };
}

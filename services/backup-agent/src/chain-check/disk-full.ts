import { statfs } from "node:fs/promises";
import type { ChainPlan, ChainStep } from "@vmbs/chain";

/** The engine's (Python's) words for a full file system. */
export const OUT_OF_SPACE_PATTERN = /ENOSPC|No space left on device|Errno 28\b|Disk quota exceeded|EDQUOT/i;

/** Below this much free space (and 5 % of the file system) a failed run is treated as out of space too. */
export const LOW_SPACE_BYTES = 64 * 1024 * 1024;

/** Free and total bytes of the backup file system, as statfs reports them for an unprivileged writer. */
export interface SpaceInfo {
  freeBytes: number;
  totalBytes: number;
}

/** Pure: did a backup fail because the backup disk is full? The engine's message, or statfs, says so. */
export function isOutOfSpace(reason: string, space: SpaceInfo | undefined): boolean {
  if (OUT_OF_SPACE_PATTERN.test(reason)) return true;
  return space !== undefined && space.freeBytes < LOW_SPACE_BYTES && space.freeBytes < space.totalBytes * 0.05;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** "free space 0.3 MiB of 24.0 MiB on /backups", for the attention event. */
export function describeSpace(root: string, space: SpaceInfo | undefined): string {
  return space ? `free space ${mib(space.freeBytes)} of ${mib(space.totalBytes)} on ${root}` : `free space on ${root} unknown`;
}

export async function readSpace(root: string): Promise<SpaceInfo | undefined> {
  const st = await statfs(root).catch(() => undefined);
  return st ? { freeBytes: st.bavail * st.bsize, totalBytes: st.blocks * st.bsize } : undefined;
}

/** Steps that end a chain: on a full disk neither an archive-and-full nor deleting the chain is right. */
const ENDS_CHAIN = new Set<ChainStep["op"]>(["archive-folder", "delete-folder", "start-new-chain"]);

/**
 * Pure: the plan after a backup failed on a full disk. A repair in place (dropping the unfinished checkpoint)
 * or a keep stands, and so does deleting an interrupted first backup (minus starting its full now); a plan
 * that would end a chain — archive it and start a full on the same full disk, which
 * cannot fit either — becomes needs-user: only the leftovers outside the chain are cleaned up.
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
  const lead = plan.steps.filter((st) => st.op === "abort-job" || st.op === "kill-qemu-nbd" || st.op === "clean-tmp");
  return {
    kind: "needs-user",
    reason:
      `backup disk full: ${space}, the chain is kept. The check would end it (${plan.reason}), but a new full ` +
      `backup cannot fit on a full disk either, so nothing is archived and no full is started: free space on the ` +
      `backup disk (or lower LOCAL_BACKUP_CHAINS_TO_KEEP); the next backup checks the chain again.`,
    steps: lead,
  };
}

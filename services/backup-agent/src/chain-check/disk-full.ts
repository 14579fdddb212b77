import { statfs } from "node:fs/promises";

/** The engine's (Python's) words for a full file system. */
const OUT_OF_SPACE_PATTERN = /ENOSPC|No space left on device|Errno 28\b|Disk quota exceeded|EDQUOT/i;

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

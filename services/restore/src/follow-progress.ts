import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ProgressSample } from "@vmbs/bus";

/*
 * The progress of a run's long part (a restore's engine, a replication's image copies), published as
 * `vmbs.progress.restore.<host>` while it runs. Its figures come from what is there anyway: the allocated size of
 * the images being written, qemu-img's own count; never a read of the data.
 */

/** Publishes `sample`'s figures every few seconds until the returned stop is called. */
export type FollowProgress = (sample: ProgressSample) => () => void;

/** Bytes allocated on disk by the regular files directly in `dir` (0 when it is not there yet): one stat each. */
export async function allocatedBytes(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let bytes = 0;
  for (const name of names) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) bytes += s.blocks * 512;
  }
  return bytes;
}

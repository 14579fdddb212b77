import { join } from "node:path";
import { dataFilesOfCheckpoint } from "./chain-files.js";
import type { ChainFolder } from "./chain-folder.js";
import { checkStreamFile } from "./stream-check.js";

/** The first checkpoint of a chain whose data does not hold up, or undefined when every file is sound. */
export interface IntegrityFault {
  checkpoint: string;
  file: string;
  problem: string;
}

/**
 * CHECK_BACKUPS_INTEGRITY for virtnbdbackup 1.9.15 (no checksums): checks the stream framing of every
 * data file of every checkpoint, oldest first, and names the first bad one.
 */
export async function checkChainIntegrity(folder: ChainFolder): Promise<IntegrityFault | undefined> {
  for (const checkpoint of folder.cpt ?? []) {
    for (const file of dataFilesOfCheckpoint(folder, checkpoint)) {
      const result = await checkStreamFile(join(folder.dir, file.path)).catch((err: unknown) => ({ ok: false as const, problem: (err as Error).message }));
      if (!result.ok) return { checkpoint, file: file.path, problem: result.problem };
    }
  }
  return undefined;
}

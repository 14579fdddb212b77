import type { ChainFolder } from "./chain-folder.js";
import { FIRST_CHECKPOINT, partialFiles } from "./chain-files.js";

/*
 * Audits `.cpt` against the data files (virtnbdbackup.md §4.5 and §8.5): every listed checkpoint must have a
 * finished data file for every disk. A checkpoint recorded without data is the silent data-loss trap: the
 * next incremental would start from it and miss everything written before it.
 */

/** Completeness of one `.cpt` entry. */
export interface CheckpointAudit {
  name: string;
  /** Every disk has its finished data file. */
  complete: boolean;
  /** Expected finished data files that are absent. */
  missing: string[];
  /** `.partial` files standing in for missing data files (the transfer was cut). */
  partials: string[];
}

/** Result of auditing a chain folder against its checkpoint list. */
export interface ChainAudit {
  /** Disk targets of the chain, taken from the first full backup (`<dev>.full.data[.partial]`). */
  disks: string[];
  /** One entry per `.cpt` name, in order. */
  checkpoints: CheckpointAudit[];
  /**
   * `.partial` files that make no listed checkpoint incomplete: a killed diff, or a killed offline inc that
   * was rewriting an already finished file. They only block the next run ("Partial backup found").
   */
  strayPartials: string[];
}

function dataFileName(disk: string, checkpoint: string): string {
  return checkpoint === FIRST_CHECKPOINT ? `${disk}.full.data` : `${disk}.inc.${checkpoint}.data`;
}

/** Audits `folder` against the checkpoint names `cpt` (normally `folder.cpt`). */
export function auditChain(folder: ChainFolder, cpt: readonly string[]): ChainAudit {
  const names = new Set(folder.files.map((f) => f.path));
  const disks = new Set<string>();
  for (const name of names) {
    if (name.includes("/")) continue;
    for (const suffix of [".full.data", ".full.data.partial"]) {
      if (name.length > suffix.length && name.endsWith(suffix)) disks.add(name.slice(0, -suffix.length));
    }
  }
  const diskList = [...disks].sort();

  const blocking = new Set<string>();
  const checkpoints = cpt.map((name): CheckpointAudit => {
    const missing: string[] = [];
    const partials: string[] = [];
    for (const disk of diskList) {
      const file = dataFileName(disk, name);
      if (names.has(file)) continue;
      missing.push(file);
      if (names.has(`${file}.partial`)) {
        partials.push(`${file}.partial`);
        blocking.add(`${file}.partial`);
      }
    }
    return { name, complete: missing.length === 0, missing, partials };
  });

  const strayPartials = partialFiles(folder)
    .map((f) => f.path)
    .filter((p) => !blocking.has(p));
  return { disks: diskList, checkpoints, strayPartials };
}

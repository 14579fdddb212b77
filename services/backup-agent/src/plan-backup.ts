import type { BackupLevel } from "@vmbs/contracts";
import { archiveBeforeBackup, hasContinuableChain, partialFiles, type ChainFolder } from "@vmbs/chain";
import type { DomainState } from "@vmbs/virt";

/** What one backup run will do, decided from what was observed before it. */
export type BackupPlan =
  | {
      kind: "run";
      level: "full" | "inc";
      /** Move the current chain folder aside first (decided by libs/chain chain-end.ts archiveBeforeBackup). */
      archiveFirst: boolean;
      /** Shut-off domain: start it paused for the run and stop it again, so the chain gets real checkpoints. */
      startPaused: boolean;
    }
  | { kind: "refuse"; reason: string };

export interface BackupObservation {
  requested: BackupLevel;
  folder: ChainFolder;
  state: DomainState;
}

/**
 * Chooses the engine level for a backup. Never `copy` (no checkpoint, no chain) and never an offline `inc`
 * (virtnbdbackup 1.9.15 overwrites the previous incremental's data file): a shut-off domain is started paused.
 */
export function planBackup({ requested, folder, state }: BackupObservation): BackupPlan {
  if (state !== "running" && state !== "paused" && state !== "shut off")
    return { kind: "refuse", reason: `domain is ${state}; only running, paused or shut-off domains are backed up` };
  const startPaused = state === "shut off";
  // The engine would write wherever the link points, and an archive would move the link, not the chain.
  if (folder.symlink) return { kind: "refuse", reason: `the chain folder ${folder.dir} is a symbolic link, which is never followed; replace it with a real folder` };
  if (folder.cptError) return { kind: "refuse", reason: `the chain's checkpoint list is unreadable (${folder.cptError}); a chain check must repair it first` };
  const partial = partialFiles(folder);
  if (partial.length > 0)
    return { kind: "refuse", reason: `an earlier backup did not finish (${partial.map((f) => f.path).join(", ")}); a chain check must repair the chain first` };
  const archiveFirst = archiveBeforeBackup(folder, requested);
  if (hasContinuableChain(folder)) return { kind: "run", level: requested === "full" ? "full" : "inc", archiveFirst, startPaused };
  if (requested === "inc") return { kind: "refuse", reason: "there is no chain to continue yet; request level full or auto" };
  return { kind: "run", level: "full", archiveFirst, startPaused };
}

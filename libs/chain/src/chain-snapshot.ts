import type { ChainFolder } from "./chain-folder.js";

/** libvirt domain state, reduced to what the planner distinguishes. */
export type DomainState = "running" | "paused" | "shut off" | "crashed" | "pmsuspended" | "other";

/** virtnbdbackup leftovers in /var/tmp that belong to no live job (absolute paths). */
export interface StaleTmp {
  /** NBD sockets `/var/tmp/virtnbdbackup.<pid>[.<dev>]`. */
  sockets: string[];
  /** Fleecing scratch files `/var/tmp/backup.<XXXXX>.<dev>`. */
  scratch: string[];
  /** qemu-nbd pid files `/var/tmp/virtnbdbackup.<pid>.<dev>.pid` of killed offline runs. */
  pidFiles: string[];
}

/**
 * Everything the planner knows about one domain's chain, gathered by the caller before planning.
 * The caller must hold the domain's backup lock, so that no backup of ours runs while this is taken.
 */
export interface ChainSnapshot {
  domain: string;
  /** The active chain folder `LOCAL_BACKUP_PATH/<domain>`. */
  folder: ChainFolder;
  /** `virsh checkpoint-list <domain> --name --topological`, all names (ours and foreign). */
  libvirtCheckpoints: string[];
  domainState: DomainState;
  /** A libvirt backup job is active on the domain (`virsh domjobinfo`); with our lock held it is a leftover. */
  backupJobActive: boolean;
  /**
   * Persistent bitmap names per image path (`qemu-img info --output json`), read only while shut off.
   * null = unknown (running domain, or the read failed).
   */
  bitmaps: Record<string, string[]> | null;
  staleTmp: StaleTmp;
  /** The host rebooted or crashed since the agent last recorded its boot id. */
  bootChanged: boolean;
  /**
   * The domain's QEMU died uncleanly (SIGKILL, host crash) or the engine reported missing/broken bitmaps
   * ("checkpoint inconsistent", "Bitmap … not found"): the on-disk bitmaps cannot be trusted.
   */
  qemuKilled?: boolean;
  /** VM_ALLOW_BACKUP_CHAIN_FIX: repair interrupted chains in place instead of archiving them. */
  allowChainFix: boolean;
  /** No in-place repair in this pass (after a host crash/reboot or a failed backup). */
  strict: boolean;
}

/**
 * One effect for an executor. Steps run in order; an executor stops at the first failure, reports it and
 * plans again from a fresh snapshot later. Plans are built so that every intermediate state is itself a
 * state the planner recognises.
 */
export type ChainStep =
  /** `virsh domjobabort`: end a leftover backup job (libvirt then removes its socket and scratch files). */
  | { op: "abort-job" }
  /** Kill the qemu-nbd process named in each pid file (it holds the image lock, the VM cannot start). */
  | { op: "kill-qemu-nbd"; pidFiles: string[] }
  /** Remove these /var/tmp leftovers (already missing ones are fine). */
  | { op: "clean-tmp"; paths: string[] }
  /** Delete these files; paths are relative to the chain folder, '/' separated. */
  | { op: "delete-files"; files: string[] }
  /**
   * `virsh checkpoint-delete <domain> <name>`, with `--metadata` when metadataOnly. A live delete lets
   * libvirt remove the bitmaps too; metadata-only is for shut-off domains (bitmaps then go by remove-bitmap)
   * and for bitmaps known to be gone (a live delete would fail with "bitmap not found").
   */
  | { op: "delete-checkpoint"; name: string; metadataOnly: boolean }
  /** `qemu-img bitmap --remove <image> <name>`. Only ever planned for a shut-off domain. */
  | { op: "remove-bitmap"; image: string; name: string }
  /** Rewrite `<domain>.cpt` with exactly these names, in the engine's JSON list format. */
  | { op: "rewrite-cpt"; checkpoints: string[] }
  /** Rename the chain folder to its archive name (then apply the configured retention). */
  | { op: "archive-folder" }
  /**
   * Delete the chain folder (only planned when it holds nothing restorable): only the files the tool makes
   * (isToolFile), then the emptied folders by rmdir. A folder holding anything else is moved aside with it.
   */
  | { op: "delete-folder" }
  /**
   * The domain must be shut off before its chain can be judged. With VM_ALLOW_POWERCYCLE the executor shuts
   * it down and plans again; otherwise it tells the user and waits.
   */
  | { op: "require-shutdown" }
  /** Run a full backup into a fresh active chain folder. */
  | { op: "start-new-chain" };

/**
 * - keep: the chain continues (steps only tidy leftovers outside the chain).
 * - repair: the chain continues after the steps fix it in place.
 * - new-chain: the chain ends (archived when it holds restorable data) and a new one starts.
 * - delete-partial-chain: the folder holds only an interrupted first backup; it is deleted and a chain starts.
 * - needs-user: nothing safe can be done automatically; the reason says what a person must do.
 */
export type PlanKind = "keep" | "repair" | "new-chain" | "delete-partial-chain" | "needs-user";

/** The planner's decision for one domain. */
export interface ChainPlan {
  kind: PlanKind;
  /** Sentences for a person, naming the checkpoints and files involved. */
  reason: string;
  steps: ChainStep[];
}

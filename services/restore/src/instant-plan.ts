import { createHash } from "node:crypto";
import { join } from "node:path";
import { dataFilesOfCheckpoint, type ChainFolder } from "@vmbs/chain";
import type { RestorePoint } from "@vmbs/contracts";
import { diskOf } from "./backup-sets.js";
import { newImagePath, RestoreRefusedError } from "./run-restore.js";

/*
 * What an instant recovery makes, decided before anything is made: for each disk the chain files that serve it,
 * and the paths of its export socket, nbdkit pid file, overlay and final image. Pure.
 */

/** One disk of an instant VM. */
export interface InstantDisk {
  target: string;
  /** Its data files, full backup first, up to the checkpoint (absolute paths). */
  files: string[];
  socket: string;
  pidFile: string;
  overlay: string;
  /** Where `instant-finish` copies it. */
  image: string;
}

export interface InstantLayout {
  /** Folder of the sockets, pid files and overlays (inside the image folder, so QEMU can reach them). */
  workDir: string;
  disks: InstantDisk[];
}

/** A short stable token of a domain name for file names (names may hold any character). */
export const nameToken = (name: string): string => createHash("sha256").update(name, "utf8").digest("hex").slice(0, 16);

/**
 * The data files of `target` from the full backup up to `point`, in chain order (within a checkpoint by mtime, as
 * virtnbdrestore applies them). Refused when a checkpoint on the way lacks the disk's file: the chain is broken.
 */
export function chainFilesOfDisk(folder: ChainFolder, points: readonly RestorePoint[], point: RestorePoint, target: string): string[] {
  const files: string[] = [];
  for (const p of points.slice(0, point.index + 1)) {
    const own = dataFilesOfCheckpoint(folder, p.name).filter((f) => diskOf(f.path) === target).sort((a, b) => a.mtimeMs - b.mtimeMs);
    if (own.length === 0) throw new RestoreRefusedError(`${folder.dir} has no data file of disk ${target} for ${p.name}: the chain up to ${point.name} is incomplete`);
    files.push(...own.map((f) => join(folder.dir, f.path)));
  }
  return files;
}

/** The paths of an instant VM `name` whose disks (target → chain files) live in `targetDir`. */
export function planInstantLayout(targetDir: string, name: string, disks: ReadonlyMap<string, string[]>): InstantLayout {
  const workDir = join(targetDir, `.vmbs-instant-${nameToken(name)}`);
  return {
    workDir,
    disks: [...disks].map(([target, files]) => ({
      target,
      files,
      socket: join(workDir, `${target}.sock`),
      pidFile: join(workDir, `${target}.pid`),
      overlay: join(workDir, `${target}.qcow2`),
      image: newImagePath(targetDir, name, target),
    })),
  };
}

/** What a restarted restore service finds of one recorded instant VM. */
export interface InstantFacts {
  phase: "starting" | "serving" | "finishing";
  /** A domain of its name is defined; whether it runs (or is paused), its state. */
  defined: boolean;
  running: boolean;
  state?: string;
  /** Disks (targets) the domain still reads from their overlays; the others were pivoted onto their images. */
  onOverlays: readonly string[];
  /** Disks whose export still runs. */
  served: readonly string[];
  /** Every disk of the instant VM. */
  disks: readonly string[];
}

/** What to do about it, and what to tell a person (undefined: nothing to tell). */
export type InstantRecovery =
  | { kind: "remove"; say: string }
  | { kind: "complete-finish"; say: string }
  | { kind: "resume"; dropCopies: string[]; backToServing: boolean; serve: string[]; say?: string };

/** The decision of instant-recovery.ts for one instant VM, from what was found. */
export function planInstantRecovery(what: string, f: InstantFacts): InstantRecovery {
  if (f.phase === "starting") return { kind: "remove", say: `the start of ${what} was interrupted before it ran; what it had made was removed` };
  if (!f.defined) return { kind: "remove", say: `${what} is no longer defined (undefined outside vmbs); its exports and overlays were removed` };
  if (f.phase === "finishing" && f.onOverlays.length === 0)
    return { kind: "complete-finish", say: `the finish of ${what} was interrupted after every disk was moved onto its image; it was completed (exports stopped, overlays removed)` };
  const notes: string[] = [];
  const serve = f.onOverlays.filter((t) => !f.served.includes(t));
  if (serve.length > 0) notes.push(`its exports of ${serve.join(", ")} were started again`);
  const dropCopies = f.phase === "finishing" ? [...f.onOverlays] : [];
  if (dropCopies.length > 0) notes.push("its finish was interrupted and its partial copies removed; run vmbs instant-restore --finish again");
  // QEMU does not reconnect to an export that went away under it.
  if (serve.length > 0 && f.running) notes.push("it ran while they were down and may see I/O errors on those disks until it is restarted (virsh destroy, virsh start)");
  if (!f.running) notes.push(`it is ${f.state ?? "not running"}: start it (virsh start) and finish it, or abandon it`);
  return {
    kind: "resume",
    dropCopies,
    backToServing: f.phase === "finishing" && f.onOverlays.length === f.disks.length,
    serve,
    ...(notes.length > 0 ? { say: `${what}: ${notes.join("; ")}` } : {}),
  };
}

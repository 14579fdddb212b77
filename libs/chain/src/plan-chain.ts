import type { ChainPlan, ChainSnapshot, ChainStep } from "./chain-snapshot.js";
import { auditChain, type ChainAudit } from "./chain-audit.js";
import { dataFiles, filesOfCheckpoint, foreignFiles, hasChain, isCopyBackup, isToolFile, partialFiles } from "./chain-files.js";
import { isOurs, list, pruneSteps, tmpNote, tmpSteps } from "./plan-steps.js";
import { folderAtChainEnd } from "./chain-end.js";

/*
 * The chain-state planner: one pure decision per domain (seed-behaviour.md §3/§4, fixed per §10, extended by
 * virtnbdbackup.md §4.5). Rules are tried in order and the first match wins:
 *
 *   0. the chain folder is a symbolic link     → needs-user (never followed, written or deleted through)
 *   1. foreign checkpoints                      → needs-user (the engine refuses; they are not ours to delete)
 *   2. shut off, bitmaps unreadable, chain state → needs-user (never touch checkpoints blind)
 *   3. no finished data file                    → delete-partial-chain / new-chain (nothing restorable)
 *   4. first full or copy interrupted           → delete-partial-chain
 *   5. copy-mode folder, 6. no full, 7. bad or missing .cpt, 8. malformed .cpt → archive + new chain
 *   9. audit .cpt against data files: a gap mid-chain → archive; unfinished newest checkpoint → repair or
 *      archive after removing only that checkpoint's files; complete chain → compare with libvirt (running)
 *      or with the disk bitmaps (shut off) → keep, repair, needs-user or archive.
 *
 * Evidence: a running or paused domain's bitmaps cannot be read, so libvirt's checkpoint list is the only
 * witness there; a shut-off domain is judged by the bitmaps in its images, the authoritative check.
 * Crashed, pmsuspended and other states are judged like a running domain, but only "keep" is acted on;
 * anything else waits for the user, because neither live nor offline checkpoint surgery is safe then.
 *
 * Archiving an interrupted chain: the seed archived the folder as it was. Here only the unfinished newest
 * checkpoint's files are deleted first and `.cpt` is cut back to its parent, so the archive restores cleanly
 * up to its last complete checkpoint (a half-written multi-disk checkpoint would otherwise restore one disk
 * newer than the other). Anything else in an archived folder is left exactly as found.
 *
 * Whether an ended chain's folder is archived, deleted or left is decided in chain-end.ts (folderAtChainEnd),
 * next to every other end of a chain (a requested full, rotation, damaged data, a full disk, a restore, the mirror).
 *
 * "Deleted" folders (delete-folder) lose only the files the tool recognises as its own (isToolFile); a folder
 * that also holds anything else (a user's disk image, notes) is moved aside with those files, never removed.
 */

type Mode = "online" | "offline";

interface Ctx {
  s: ChainSnapshot;
  mode: Mode;
  /** Steps every acting plan starts with: abort the leftover job, stop stale qemu-nbd, clean /var/tmp. */
  lead: ChainStep[];
  /** Sentence describing `lead`. */
  note: string;
  /** libvirt checkpoints of ours, topological. */
  ours: string[];
  /** `.cpt` entries, [] when missing or unreadable. */
  cpt: string[];
  d: string;
  dir: string;
}

/** Decides what to do with one domain's chain. Pure: never throws for any snapshot. */
export function planChain(s: ChainSnapshot): ChainPlan {
  switch (s.domainState) {
    case "running":
    case "paused":
      return evaluate(context(s, "online", true));
    case "shut off":
      return evaluate(context(s, "offline", false));
    default:
      return planUnsettled(s);
  }
}

function context(s: ChainSnapshot, mode: Mode, mayAbortJob: boolean): Ctx {
  const withJob = mayAbortJob && s.backupJobActive;
  return {
    s,
    mode,
    lead: [...(withJob ? [{ op: "abort-job" } as const] : []), ...tmpSteps(s)],
    note: tmpNote(s, withJob),
    ours: s.libvirtCheckpoints.filter(isOurs),
    cpt: s.folder.cpt ?? [],
    d: s.domain,
    dir: s.folder.dir,
  };
}

function planUnsettled(s: ChainSnapshot): ChainPlan {
  const state = s.domainState === "other" ? "in a transitional or unknown state" : s.domainState;
  const inner = evaluate(context(s, "online", false));
  if (inner.kind === "keep") {
    return { ...inner, reason: `${s.domain} is ${state}; judged by libvirt metadata only. ${inner.reason}` };
  }
  return {
    kind: "needs-user",
    reason:
      `${s.domain} is ${state}, so its chain and checkpoints are left alone until it is running or shut off ` +
      `(resume, start or shut it down). What was found: ${inner.reason}`,
    steps: tmpSteps(s),
  };
}

/* ------------------------------------------------------------------ plan builders */

function needsUser(c: Ctx, reason: string, requireShutdown = false): ChainPlan {
  // Without a shutdown request nothing of the domain is touched; only our own /var/tmp leftovers go.
  const steps: ChainStep[] = requireShutdown ? [...c.lead, { op: "require-shutdown" }] : tmpSteps(c.s);
  return { kind: "needs-user", reason: reason + (requireShutdown ? c.note : tmpNote(c.s, false)), steps };
}

function keep(c: Ctx, reason: string, strays: readonly string[]): ChainPlan {
  if (strays.length === 0) return { kind: "keep", reason: reason + c.note, steps: [...c.lead] };
  // Removing a partial that belongs to no checkpoint changes no chain state, so it needs no fix permission.
  return {
    kind: "repair",
    reason:
      reason +
      ` The leftover ${list(strays)} of a killed run that recorded no checkpoint is deleted, because it would ` +
      `block the next backup ("Partial backup found").` +
      c.note,
    steps: [...c.lead, { op: "delete-files", files: [...strays] }],
  };
}

interface EndOptions {
  /** Whether anything in the folder can be restored; folderAtChainEnd turns this into archive, delete or nothing. */
  restorable: boolean;
  /** Files removed before archiving, relative to the folder. */
  cleanup?: string[];
  /** New `.cpt` content written before archiving. */
  cpt?: string[];
}

/** Ends the chain: leftovers, optional cleanup, prune libvirt/bitmaps, archive or delete, new full. */
function endChain(c: Ctx, kind: "new-chain" | "delete-partial-chain", reason: string, o: EndOptions): ChainPlan {
  const prune = pruneSteps(c.ours, c.mode === "offline", c.s.bitmaps, c.s.qemuKilled === true);
  const steps: ChainStep[] = [...c.lead];
  if (o.cleanup && o.cleanup.length > 0) steps.push({ op: "delete-files", files: o.cleanup });
  if (o.cpt) steps.push({ op: "rewrite-cpt", checkpoints: o.cpt });
  steps.push(...prune);
  const fate = folderAtChainEnd(c.s.folder, o.restorable);
  if (fate === "archive") steps.push({ op: "archive-folder" });
  if (fate === "delete") steps.push({ op: "delete-folder" });
  steps.push({ op: "start-new-chain" });
  const kept = fate === "delete" ? foreignNote(c) : "";
  return { kind, reason: reason + kept + pruneNote(prune) + " A new chain starts with a full backup." + c.note, steps };
}

/** Tells which files of a folder to delete are not the tool's: they are kept and the folder is moved aside. */
function foreignNote(c: Ctx): string {
  const foreign = foreignFiles(c.s.folder, c.d).map((f) => f.path);
  if (foreign.length === 0) return "";
  return (
    ` Only the backup's own files are deleted: ${fewNames(foreign)} ${foreign.length === 1 ? "was" : "were"} not ` +
    `written by virtnbdbackup, so ${foreign.length === 1 ? "it is" : "they are"} kept and the folder is moved aside ` +
    `as ${c.d}.<time>.foreign-files.`
  );
}

function pruneNote(prune: readonly ChainStep[]): string {
  const cps: string[] = [];
  let metadataOnly = false;
  let bitmaps = 0;
  for (const step of prune) {
    if (step.op === "delete-checkpoint") {
      cps.push(step.name);
      metadataOnly ||= step.metadataOnly;
    } else if (step.op === "remove-bitmap") bitmaps++;
  }
  if (cps.length === 0 && bitmaps === 0) return "";
  const parts: string[] = [];
  if (cps.length > 0) parts.push(`the libvirt checkpoints ${list(cps)} are deleted${metadataOnly ? " (metadata only)" : ""}`);
  if (bitmaps > 0) parts.push(`${bitmaps} bitmap${bitmaps === 1 ? "" : "s"} of ours removed from the shut-off images`);
  const text = parts.join(" and ");
  return ` ${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/* ------------------------------------------------------------------ helpers */

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function isPrefix(prefix: readonly string[], of: readonly string[]): boolean {
  return prefix.length <= of.length && prefix.every((x, i) => x === of[i]);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
}

function fewNames(paths: readonly string[]): string {
  return paths.length <= 3 ? paths.join(", ") : `${paths.slice(0, 3).join(", ")} and ${paths.length - 3} more`;
}

function uniq(items: readonly string[]): string[] {
  return [...new Set(items)];
}

/** The paths among `paths` the tool made itself (exact names): a checkpoint's look-alike user files are never deleted. */
function ownFiles(c: Ctx, paths: readonly string[]): string[] {
  return uniq(paths).filter((p) => isToolFile(p, c.d));
}

/** Our bitmaps per image of a shut-off domain (foreign bitmaps are not the chain's business). */
function ourBitmaps(c: Ctx): [string, string[]][] {
  return Object.entries(c.s.bitmaps ?? {}).map(([image, names]) => [image, names.filter(isOurs)]);
}

/** Checkpoints of the chain that libvirt lacks and that virtnbdbackup could not redefine (no XML). */
function missingXml(c: Ctx, chain: readonly string[]): string[] {
  const have = new Set(c.s.folder.files.map((f) => f.path));
  return chain.filter((cp) => !c.ours.includes(cp) && !have.has(`checkpoints/${cp}.xml`));
}

function whyNoFix(s: ChainSnapshot): string {
  return !s.allowChainFix
    ? "VM_ALLOW_BACKUP_CHAIN_FIX is off"
    : "in-place repair is disabled after a host restart or a failed backup (strict mode)";
}

/* ------------------------------------------------------------------ the rules */

function evaluate(c: Ctx): ChainPlan {
  const { s, d, dir } = c;
  const folder = s.folder;

  if (folder.symlink) {
    return needsUser(
      c,
      `The chain folder ${dir} is a symbolic link. The agent never follows it (it could point at anything, and ` +
        `deleting or archiving through it could destroy data elsewhere): replace it with a real folder, or mount ` +
        `the backup disk at LOCAL_BACKUP_PATH instead.`,
    );
  }

  const foreign = s.libvirtCheckpoints.filter((n) => !isOurs(n));
  if (foreign.length > 0) {
    return needsUser(
      c,
      `${d} has checkpoints not made by virtnbdbackup: ${list(foreign)}. virtnbdbackup refuses to back up a domain ` +
        `with foreign checkpoints, and deleting them could destroy another tool's backups: remove them with ` +
        `virsh checkpoint-delete or exclude ${d} from backups.`,
    );
  }

  const bitmapsKnown = s.bitmaps !== null && Object.keys(s.bitmaps).length > 0;
  if (c.mode === "offline" && !bitmapsKnown && (c.ours.length > 0 || c.cpt.length > 0 || folder.cptError !== undefined)) {
    const lock =
      s.staleTmp.pidFiles.length > 0
        ? " Stale qemu-nbd processes probably hold the image lock; they are stopped now, then the chain is checked again."
        : " Check that qemu-img can read its disk images.";
    return needsUser(
      c,
      `The disk bitmaps of shut-off ${d} could not be read, so its chain (${d}.cpt: ${list(c.cpt)}; libvirt: ` +
        `${list(c.ours)}) can be neither verified nor pruned safely.${lock}`,
    );
  }

  const data = dataFiles(folder).map((f) => f.path);
  const partials = partialFiles(folder).map((f) => f.path);
  const cptNote = folder.cptError ? ` (${folder.cptError})` : "";

  // Rule 3: no finished data file at all, so nothing in the folder can be restored.
  if (data.length === 0) {
    if (partials.length > 0) {
      return endChain(
        c,
        "delete-partial-chain",
        `The first backup in ${dir} was interrupted: ${list(partials)} never finished, so the folder holds nothing ` +
          `restorable and is deleted.`,
        { restorable: false },
      );
    }
    if (c.cpt.length > 0) {
      return endChain(
        c,
        "delete-partial-chain",
        `${d}.cpt in ${dir} records ${list(c.cpt)} but no data file was written (the first backup was killed ` +
          `early), so the folder holds nothing restorable and is deleted.`,
        { restorable: false },
      );
    }
    if (!folder.exists) return endChain(c, "new-chain", `${d} has no chain folder (${dir}) yet.`, { restorable: false });
    if (folder.files.length === 0) return endChain(c, "new-chain", `The chain folder ${dir} is empty.`, { restorable: false });
    return endChain(
      c,
      "new-chain",
      `${dir} holds no backup data, only ${fewNames(folder.files.map((f) => f.path))}${cptNote}; it is deleted.`,
      { restorable: false },
    );
  }

  // Rule 4: the first full (or copy) backup itself never finished for some disk.
  const names = new Set(folder.files.map((f) => f.path));
  const unfinishedFirst = partials.filter(
    (p) => (p.endsWith(".full.data.partial") || p.endsWith(".copy.data.partial")) && !names.has(p.slice(0, -".partial".length)),
  );
  if (c.cpt.length <= 1 && unfinishedFirst.length > 0) {
    return endChain(
      c,
      "delete-partial-chain",
      `The first backup in ${dir} was interrupted: ${list(unfinishedFirst)} never finished (only ${list(data)} ` +
        `did), so no complete restore point exists and the folder is deleted.`,
      { restorable: false },
    );
  }

  // Rules 5–8: restorable data, but no chain that virtnbdbackup could continue.
  if (isCopyBackup(folder)) {
    return endChain(
      c,
      "new-chain",
      `${dir} holds a copy-mode backup (${list(data)}) without checkpoints, which cannot be continued; it is ` +
        `archived and stays restorable.`,
      { restorable: true },
    );
  }
  if (!hasChain(folder)) {
    return endChain(
      c,
      "new-chain",
      `${dir} holds data files (${fewNames(data)}) but no full backup (*.full.data), so the chain cannot ` +
        `continue; it is archived as is.`,
      { restorable: true },
    );
  }
  if (folder.cptError !== undefined || c.cpt.length === 0) {
    const what = folder.cptError ?? (folder.cpt === null ? `${d}.cpt is missing` : `${d}.cpt is empty`);
    return endChain(
      c,
      "new-chain",
      `${what}, so virtnbdbackup cannot continue the chain in ${dir}; it is archived and its full backup stays ` +
        `restorable.`,
      { restorable: true },
    );
  }
  const badIndex = c.cpt.findIndex((name, i) => name !== `virtnbdbackup.${i}`);
  if (badIndex >= 0) {
    return endChain(
      c,
      "new-chain",
      `${d}.cpt lists ${list(c.cpt)}, but entry ${badIndex} should be virtnbdbackup.${badIndex}; such a chain ` +
        `cannot be trusted, so ${dir} is archived as is.`,
      { restorable: true },
    );
  }

  // Rule 9: audit the checkpoint list against the data files.
  const audit = auditChain(folder, c.cpt);
  const firstBad = audit.checkpoints.findIndex((x) => !x.complete);
  const n = c.cpt.length;
  if (firstBad >= 0 && (firstBad < n - 1 || n === 1)) return planGap(c, audit, firstBad);
  if (firstBad === n - 1) return planUnfinishedLeaf(c, audit);
  return planComplete(c, audit);
}

/** A checkpoint before the newest one is incomplete: later increments sit on a hole. */
function planGap(c: Ctx, audit: ChainAudit, firstBad: number): ChainPlan {
  const bad = audit.checkpoints[firstBad];
  const later = audit.checkpoints.slice(firstBad + 1).filter((x) => x.complete).map((x) => x.name);
  const upTo = firstBad > 0 ? c.cpt[firstBad - 1] : undefined;
  return endChain(
    c,
    "new-chain",
    `Checkpoint ${bad?.name} of ${c.d} is incomplete (${list(bad?.missing ?? [])} missing).` +
      (later.length > 0
        ? ` The later checkpoints ${list(later)} were taken on top of it and miss the changes it should hold ` +
          `(silent data loss), so they must not be restored.`
        : "") +
      ` The chain in ${c.dir} is archived as is; it restores correctly only ` +
      (upTo ? `up to ${upTo}.` : "as far as its complete disks go."),
    { restorable: true },
  );
}

type LeafEvidence = { ok: true; deleteCheckpoint: boolean; bitmapImages: string[] } | { ok: false; why: string };

/** Can the unfinished newest checkpoint N be dropped safely, i.e. is its parent intact and N truly the newest? */
function leafEvidence(c: Ctx, last: string, parent: readonly string[]): LeafEvidence {
  const { s, d } = c;
  if (s.qemuKilled) return { ok: false, why: "the disk bitmaps are not trustworthy after QEMU stopped uncleanly" };
  if (c.mode === "online") {
    if (same(c.ours, c.cpt)) return { ok: true, deleteCheckpoint: true, bitmapImages: [] };
    if (same(c.ours, parent)) return { ok: true, deleteCheckpoint: false, bitmapImages: [] };
    return {
      ok: false,
      why: `libvirt lists ${list(c.ours)} while ${d}.cpt lists ${list(c.cpt)}, so they do not agree that ${last} is the newest checkpoint`,
    };
  }
  const images: string[] = [];
  for (const [image, names] of ourBitmaps(c)) {
    if (!sameSet(names, c.cpt) && !sameSet(names, parent)) {
      return { ok: false, why: `image ${image} has the bitmaps ${list(names)} instead of ${list(c.cpt)}` };
    }
    if (names.includes(last)) images.push(image);
  }
  if (!isPrefix(c.ours, c.cpt)) {
    return { ok: false, why: `libvirt lists ${list(c.ours)}, which is not a start of this chain (${list(c.cpt)})` };
  }
  const noXml = missingXml(c, parent);
  if (noXml.length > 0) {
    return { ok: false, why: `libvirt lacks ${list(noXml)} and their checkpoints/*.xml are missing, so they cannot be redefined` };
  }
  return { ok: true, deleteCheckpoint: c.ours.includes(last), bitmapImages: images };
}

/** The newest checkpoint has a .cpt entry but not all its data files: the classic killed run. */
function planUnfinishedLeaf(c: Ctx, audit: ChainAudit): ChainPlan {
  const { s, d } = c;
  const last = c.cpt[c.cpt.length - 1] ?? "";
  const parent = c.cpt.slice(0, -1);
  const parentName = parent[parent.length - 1] ?? "";
  const leaf = audit.checkpoints[audit.checkpoints.length - 1];
  const what =
    leaf && leaf.partials.length > 0
      ? `its transfer was cut (${list(leaf.partials)} never finished)`
      : `it has no data file (${list(leaf?.missing ?? [])} missing): the run was killed before writing, and an ` +
        `incremental on top of it would silently miss every change made since ${parentName}`;
  const intro = `Checkpoint ${last}, the newest in ${d}.cpt, is unfinished: ${what}.`;
  const cleanup = ownFiles(c, [...filesOfCheckpoint(s.folder, last).map((f) => f.path), ...audit.strayPartials]);
  const evidence = leafEvidence(c, last, parent);

  if (evidence.ok && s.allowChainFix && !s.strict) {
    const steps: ChainStep[] = [...c.lead];
    if (cleanup.length > 0) steps.push({ op: "delete-files", files: cleanup });
    if (evidence.deleteCheckpoint) steps.push({ op: "delete-checkpoint", name: last, metadataOnly: c.mode === "offline" });
    for (const image of evidence.bitmapImages) steps.push({ op: "remove-bitmap", image, name: last });
    steps.push({ op: "rewrite-cpt", checkpoints: parent });
    const lib = evidence.deleteCheckpoint
      ? c.mode === "online"
        ? `, ${last} is deleted from libvirt (which drops its bitmap)`
        : `, ${last} is deleted from libvirt (metadata only)`
      : "";
    const bm = evidence.bitmapImages.length > 0 ? ` and its bitmap removed from ${list(evidence.bitmapImages)}` : "";
    return {
      kind: "repair",
      reason:
        `${intro} Repaired in place: the files of ${last} are deleted${lib}${bm}, and ${d}.cpt is cut back to ` +
        `${parentName}. The next incremental covers everything since ${parentName}.` +
        c.note,
      steps,
    };
  }

  const why = evidence.ok ? whyNoFix(s) : evidence.why;
  return endChain(
    c,
    "new-chain",
    `${intro} It is not repaired in place because ${why}. The files of ${last} are removed and ${d}.cpt is cut ` +
      `back to ${parentName} first, so the archived chain restores cleanly up to ${parentName}.`,
    { restorable: true, cleanup, cpt: parent },
  );
}

/** Every checkpoint has its data: compare the chain with libvirt (running) or the disk bitmaps (shut off). */
function planComplete(c: Ctx, audit: ChainAudit): ChainPlan {
  const { s, d, dir } = c;
  const n = c.cpt.length;
  const last = c.cpt[n - 1] ?? "";
  const next = `virtnbdbackup.${n}`;
  const strays = audit.strayPartials;
  const archive = (why: string): ChainPlan =>
    endChain(c, "new-chain", `${why} The chain in ${dir} (${n} checkpoint${n === 1 ? "" : "s"}, up to ${last}) is archived intact.`, {
      restorable: true,
    });

  if (s.qemuKilled) {
    return archive(
      `The bitmaps of ${d} cannot be trusted after QEMU stopped uncleanly (or the engine reported them missing), so the chain cannot continue.`,
    );
  }

  if (c.mode === "online") {
    if (same(c.ours, c.cpt)) {
      return keep(c, `The chain in ${dir} is consistent: libvirt and ${d}.cpt agree on ${n} checkpoint${n === 1 ? "" : "s"} up to ${last}, each with its data files.`, strays);
    }
    if (c.ours.length === 0) {
      if (s.bootChanged) {
        return needsUser(
          c,
          `libvirt lost the checkpoints of ${d} across the host restart, while ${d}.cpt lists ${list(c.cpt)}. A running ` +
            `domain's bitmaps cannot be read, so ${d} must be shut off to check them (VM_ALLOW_POWERCYCLE lets this ` +
            `happen automatically); the chain is left untouched until then.`,
          true,
        );
      }
      return archive(`libvirt has no checkpoints for ${d} while ${d}.cpt lists ${list(c.cpt)}; a running domain's bitmaps cannot be checked against the chain.`);
    }
    if (same(c.ours, [...c.cpt, next])) return planAhead(c, next, [], strays);
    return archive(
      `libvirt lists ${list(c.ours)} but ${d}.cpt lists ${list(c.cpt)} (checkpoints of a chain in another folder, or removed by hand), so the chain cannot continue.`,
    );
  }

  // Shut off: the bitmaps in the images are the authoritative witness.
  const images = ourBitmaps(c);
  const withNext = [...c.cpt, next];
  if (images.every(([, names]) => sameSet(names, c.cpt)) && isPrefix(c.ours, c.cpt)) {
    const noXml = missingXml(c, c.cpt);
    if (noXml.length > 0) {
      return archive(`libvirt lacks ${list(noXml)} and checkpoints/${noXml[0]}.xml is missing, so virtnbdbackup cannot redefine it.`);
    }
    const redefine =
      c.ours.length < n
        ? ` libvirt lacks ${list(c.cpt.slice(c.ours.length))}; virtnbdbackup redefines ${n - c.ours.length === 1 ? "it" : "them"} from checkpoints/*.xml at its next online backup.`
        : "";
    return keep(c, `The chain in ${dir} is consistent: the bitmaps of every image match ${d}.cpt (${n} checkpoint${n === 1 ? "" : "s"} up to ${last}), each with its data files.${redefine}`, strays);
  }
  const aheadBitmaps = images.every(([, names]) => sameSet(names, c.cpt) || sameSet(names, withNext));
  const nextSeen = c.ours.includes(next) || images.some(([, names]) => names.includes(next));
  if (aheadBitmaps && nextSeen && isPrefix(c.ours, withNext) && missingXml(c, c.cpt).length === 0) {
    return planAhead(c, next, images.filter(([, names]) => names.includes(next)).map(([image]) => image), strays);
  }
  const mismatch = images.find(([, names]) => !sameSet(names, c.cpt));
  return archive(
    mismatch
      ? `Image ${mismatch[0]} has the bitmaps ${list(mismatch[1])} but ${d}.cpt lists ${list(c.cpt)}, so the chain cannot continue.`
      : `libvirt lists ${list(c.ours)}, which is not a start of ${d}.cpt (${list(c.cpt)}), so the chain cannot continue.`,
  );
}

/** libvirt (or the bitmaps) already hold the next checkpoint, which .cpt never recorded. */
function planAhead(c: Ctx, next: string, bitmapImages: string[], strays: readonly string[]): ChainPlan {
  const { s, d } = c;
  const last = c.cpt[c.cpt.length - 1] ?? "";
  const intro =
    `${next} exists ${c.mode === "online" ? "in libvirt" : "in libvirt or the disk bitmaps"} but not in ${d}.cpt, ` +
    `which ends at ${last}: a backup was killed between creating the checkpoint and recording it.`;
  const files = ownFiles(c, [...filesOfCheckpoint(s.folder, next).map((f) => f.path), ...strays]);
  if (s.allowChainFix && !s.strict) {
    const steps: ChainStep[] = [...c.lead];
    if (files.length > 0) steps.push({ op: "delete-files", files });
    if (c.ours.includes(next)) steps.push({ op: "delete-checkpoint", name: next, metadataOnly: c.mode === "offline" });
    for (const image of bitmapImages) steps.push({ op: "remove-bitmap", image, name: next });
    return {
      kind: "repair",
      reason: `${intro} Repaired in place: ${next} is removed and the chain continues from ${last}.` + c.note,
      steps,
    };
  }
  return endChain(c, "new-chain", `${intro} It is not repaired in place because ${whyNoFix(s)}; the chain is archived intact.`, {
    restorable: true,
  });
}

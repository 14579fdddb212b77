import { test } from "node:test";
import * as assert from "node:assert/strict";
import type { ChainFolder } from "./chain-folder.js";
import type { ChainPlan, ChainSnapshot, ChainStep, PlanKind } from "./chain-snapshot.js";
import { planChain } from "./plan-chain.js";

/* ------------------------------------------------------------------ fixtures */

const DIR = "/backups/vm1";
const IMG_A = "/vm/vm1-a.qcow2";
const IMG_B = "/vm/vm1-b.qcow2";
const SOCK = "/var/tmp/virtnbdbackup.4242";
const SCRATCH = "/var/tmp/backup.ABCDE.sda";
const NBD_SOCK = "/var/tmp/virtnbdbackup.777.sda";
const NBD_PID = "/var/tmp/virtnbdbackup.777.sda.pid";

/** ["virtnbdbackup.0", …, "virtnbdbackup.<n-1>"] */
const cps = (n: number): string[] => Array.from({ length: n }, (_, i) => `virtnbdbackup.${i}`);
const cp = (i: number): string => `virtnbdbackup.${i}`;

/** Side files every checkpoint has besides its data files. */
function sideFiles(i: number, disks: string[]): string[] {
  return [`checkpoints/${cp(i)}.xml`, `vmconfig.${cp(i)}.xml`, ...disks.map((d) => `${d}.${cp(i)}.qcow.json`)];
}

/** A folder with `complete` finished checkpoints, plus the .cpt file and a log. */
function chainFiles(complete: number, disks: string[] = ["sda"]): string[] {
  const files = ["vm1.cpt", "backup.full.01012024000000.log"];
  for (let i = 0; i < complete; i++) {
    files.push(...disks.map((d) => (i === 0 ? `${d}.full.data` : `${d}.inc.${cp(i)}.data`)), ...sideFiles(i, disks));
  }
  return files;
}

/** Files of checkpoint i that a killed run left: side files, plus a `.partial` per disk when `partial`. */
function unfinished(i: number, partial: boolean, disks: string[] = ["sda"]): string[] {
  return [...sideFiles(i, disks), ...(partial ? disks.map((d) => `${d}.inc.${cp(i)}.data.partial`) : [])];
}

/** What filesOfCheckpoint returns for those leftovers: checkpoints/ XML first, then top-level names sorted. */
function leftovers(i: number, partial: boolean, disks: string[] = ["sda"]): string[] {
  const all = unfinished(i, partial, disks);
  return [...all.filter((p) => p.includes("/")), ...all.filter((p) => !p.includes("/")).sort()];
}

function folder(paths: string[], cpt: string[] | null, extra: Partial<ChainFolder> = {}): ChainFolder {
  const files = [...paths].sort().map((path, i) => ({ path, size: 100, mtimeMs: 1_700_000_000_000 + i }));
  return { dir: DIR, exists: true, files, cpt, ...extra };
}

const NO_TMP = { sockets: [], scratch: [], pidFiles: [] };

function snap(o: Partial<ChainSnapshot>): ChainSnapshot {
  return {
    domain: "vm1",
    folder: folder(chainFiles(3), cps(3)),
    libvirtCheckpoints: cps(3),
    domainState: "running",
    backupJobActive: false,
    bitmaps: null,
    staleTmp: NO_TMP,
    bootChanged: false,
    qemuKilled: false,
    allowChainFix: true,
    strict: false,
    ...o,
  };
}

/* step shorthands */
const del = (name: string, metadataOnly: boolean): ChainStep => ({ op: "delete-checkpoint", name, metadataOnly });
const delAll = (n: number, metadataOnly: boolean): ChainStep[] => cps(n).reverse().map((name) => del(name, metadataOnly));
const rmBitmap = (image: string, name: string): ChainStep => ({ op: "remove-bitmap", image, name });
const rmBitmaps = (image: string, n: number): ChainStep[] => cps(n).reverse().map((name) => rmBitmap(image, name));
const files = (...f: string[]): ChainStep => ({ op: "delete-files", files: f });
const cpt = (n: number): ChainStep => ({ op: "rewrite-cpt", checkpoints: cps(n) });
const ABORT: ChainStep = { op: "abort-job" };
const ARCHIVE: ChainStep = { op: "archive-folder" };
const DELETE_FOLDER: ChainStep = { op: "delete-folder" };
const START: ChainStep = { op: "start-new-chain" };
const SHUTDOWN: ChainStep = { op: "require-shutdown" };

/** The classic killed online incremental: 3 complete checkpoints, virtnbdbackup.3 with a `.partial`. */
const killedInc = folder([...chainFiles(3), ...unfinished(3, true)], cps(4));

/* ------------------------------------------------------------------ table */

interface Row {
  name: string;
  snapshot: ChainSnapshot;
  kind: PlanKind;
  steps: ChainStep[];
  /** Every pattern must occur in the reason. */
  reason: RegExp[];
}

const rows: Row[] = [
  /* --- consistent chains (seed rows 7 and 9) --- */
  {
    name: "running, libvirt and .cpt agree, all data present",
    snapshot: snap({}),
    kind: "keep",
    steps: [],
    reason: [/agree on 3 checkpoints up to virtnbdbackup\.2/],
  },
  {
    name: "paused domain is judged like a running one, not dropped",
    snapshot: snap({ domainState: "paused" }),
    kind: "keep",
    steps: [],
    reason: [/consistent/],
  },
  {
    name: "running, consistent chain but a leftover job without checkpoint is aborted",
    snapshot: snap({ backupJobActive: true }),
    kind: "keep",
    steps: [ABORT],
    reason: [/leftover backup job is aborted/],
  },
  {
    name: "shut off, every image's bitmaps match .cpt (foreign bitmap ignored)",
    snapshot: snap({ domainState: "shut off", bitmaps: { [IMG_A]: [...cps(3), "user-bitmap"], [IMG_B]: cps(3) } }),
    kind: "keep",
    steps: [],
    reason: [/bitmaps of every image match vm1\.cpt \(3 checkpoints up to virtnbdbackup\.2\)/],
  },
  {
    name: "shut off, libvirt lost its metadata but bitmaps and XMLs are intact (engine redefines)",
    snapshot: snap({ domainState: "shut off", libvirtCheckpoints: [], bitmaps: { [IMG_A]: cps(3) } }),
    kind: "keep",
    steps: [],
    reason: [/libvirt lacks virtnbdbackup\.0, virtnbdbackup\.1, virtnbdbackup\.2/, /redefines them from checkpoints/],
  },
  {
    name: "full backup with a raw disk written as copy data is a normal chain",
    snapshot: snap({ folder: folder([...chainFiles(3), "sdb.copy.data"], cps(3)) }),
    kind: "keep",
    steps: [],
    reason: [/consistent/],
  },

  /* --- nothing restorable (seed rows 1 and 2) --- */
  {
    name: "chain folder missing (new domain)",
    snapshot: snap({ folder: { dir: DIR, exists: false, files: [], cpt: null }, libvirtCheckpoints: [] }),
    kind: "new-chain",
    steps: [START],
    reason: [/no chain folder \(\/backups\/vm1\)/],
  },
  {
    name: "folder missing but libvirt holds checkpoints of a chain in another folder",
    snapshot: snap({ folder: { dir: DIR, exists: false, files: [], cpt: null }, libvirtCheckpoints: cps(2) }),
    kind: "new-chain",
    steps: [...delAll(2, false), START],
    reason: [/libvirt checkpoints virtnbdbackup\.1, virtnbdbackup\.0 are deleted/],
  },
  {
    name: "shut off, folder missing, old bitmaps still in the image",
    snapshot: snap({
      domainState: "shut off",
      folder: { dir: DIR, exists: false, files: [], cpt: null },
      libvirtCheckpoints: [],
      bitmaps: { [IMG_A]: [...cps(2), "user-bitmap"] },
    }),
    kind: "new-chain",
    steps: [...rmBitmaps(IMG_A, 2), START],
    reason: [/2 bitmaps of ours removed/],
  },
  {
    name: "empty chain folder",
    snapshot: snap({ folder: folder([], null), libvirtCheckpoints: [] }),
    kind: "new-chain",
    steps: [START],
    reason: [/is empty/],
  },
  {
    name: "log-only folder (failed runs leave logs, vmconfig and qcow.json)",
    snapshot: snap({
      folder: folder(["backup.full.01012024000000.log", "backup.auto.01022024000000.log", "vmconfig.virtnbdbackup.0.xml"], null),
      libvirtCheckpoints: [],
    }),
    kind: "new-chain",
    steps: [DELETE_FOLDER, START],
    reason: [/holds no backup data, only backup\.auto\.01022024000000\.log/],
  },
  {
    name: "a user's disk image and notes in a folder with no backup data: kept, only our log goes, folder moved aside",
    snapshot: snap({ folder: folder(["vdisk1.img", "notes.txt", "backup.full.01012024000000.log"], null), libvirtCheckpoints: [] }),
    kind: "new-chain",
    steps: [DELETE_FOLDER, START],
    reason: [/Only the backup's own files are deleted: notes\.txt, vdisk1\.img were not written by virtnbdbackup/, /moved aside as vm1\.<time>\.foreign-files/],
  },
  {
    name: "interrupted first full next to a user's file: the note names the file",
    snapshot: snap({ folder: folder(["vm1.cpt", "sda.full.data.partial", "vdisk1.img", ...sideFiles(0, ["sda"])], cps(1)), libvirtCheckpoints: cps(1) }),
    kind: "delete-partial-chain",
    steps: [del(cp(0), false), DELETE_FOLDER, START],
    reason: [/never finished/, /vdisk1\.img was not written by virtnbdbackup, so it is kept/],
  },
  {
    name: "a symlinked chain folder is never followed: needs-user",
    snapshot: snap({ folder: { dir: DIR, exists: true, symlink: true, files: [], cpt: null } }),
    kind: "needs-user",
    steps: [],
    reason: [/is a symbolic link/, /never follows it/],
  },
  {
    name: "interrupted first full with a live job and stale socket/scratch",
    snapshot: snap({
      folder: folder(["vm1.cpt", "sda.full.data.partial", ...sideFiles(0, ["sda"])], cps(1)),
      libvirtCheckpoints: cps(1),
      backupJobActive: true,
      staleTmp: { sockets: [SOCK], scratch: [SCRATCH], pidFiles: [] },
    }),
    kind: "delete-partial-chain",
    steps: [ABORT, { op: "clean-tmp", paths: [SOCK, SCRATCH] }, del(cp(0), false), DELETE_FOLDER, START],
    reason: [/sda\.full\.data\.partial never finished/, /2 stale \/var\/tmp files removed/],
  },
  {
    name: "first full killed before any data file (.cpt lists virtnbdbackup.0 only)",
    snapshot: snap({ folder: folder(["vm1.cpt", ...sideFiles(0, ["sda"])], cps(1)), libvirtCheckpoints: cps(1) }),
    kind: "delete-partial-chain",
    steps: [del(cp(0), false), DELETE_FOLDER, START],
    reason: [/records virtnbdbackup\.0 but no data file was written/],
  },
  {
    name: "multi-disk first full: sda finished, sdb cut",
    snapshot: snap({
      folder: folder(["vm1.cpt", "sda.full.data", "sdb.full.data.partial", ...sideFiles(0, ["sda", "sdb"])], cps(1)),
      libvirtCheckpoints: cps(1),
    }),
    kind: "delete-partial-chain",
    steps: [del(cp(0), false), DELETE_FOLDER, START],
    reason: [/sdb\.full\.data\.partial never finished \(only sda\.full\.data did\)/],
  },
  {
    name: "killed offline copy: partial, stale qemu-nbd holding the image lock",
    snapshot: snap({
      domainState: "shut off",
      folder: folder(["sda.copy.data.partial", "backup.copy.01012024000000.log"], null),
      libvirtCheckpoints: [],
      bitmaps: { [IMG_A]: [] },
      staleTmp: { sockets: [NBD_SOCK], scratch: [], pidFiles: [NBD_PID] },
    }),
    kind: "delete-partial-chain",
    steps: [{ op: "kill-qemu-nbd", pidFiles: [NBD_PID] }, { op: "clean-tmp", paths: [NBD_SOCK, NBD_PID] }, DELETE_FOLDER, START],
    reason: [/sda\.copy\.data\.partial never finished/, /stale qemu-nbd processes \(\/var\/tmp\/virtnbdbackup\.777\.sda\.pid\) are stopped/i],
  },

  /* --- restorable but not continuable (seed row 5 and friends) --- */
  {
    name: "copy-mode folder is archived",
    snapshot: snap({ folder: folder(["sda.copy.data", "vmconfig.copy.xml"], null), libvirtCheckpoints: [] }),
    kind: "new-chain",
    steps: [ARCHIVE, START],
    reason: [/copy-mode backup \(sda\.copy\.data\)/],
  },
  {
    name: "increments without a full backup are archived, never deleted",
    snapshot: snap({ folder: folder(["vm1.cpt", "sda.inc.virtnbdbackup.1.data"], cps(2)), libvirtCheckpoints: cps(2) }),
    kind: "new-chain",
    steps: [...delAll(2, false), ARCHIVE, START],
    reason: [/no full backup/],
  },
  {
    name: ".cpt missing beside a full backup",
    snapshot: snap({ folder: folder(chainFiles(3).filter((f) => f !== "vm1.cpt"), null) }),
    kind: "new-chain",
    steps: [...delAll(3, false), ARCHIVE, START],
    reason: [/vm1\.cpt is missing/],
  },
  {
    name: ".cpt is not JSON",
    snapshot: snap({ folder: folder(chainFiles(3), null, { cptError: "vm1.cpt: not valid JSON: Unexpected token" }) }),
    kind: "new-chain",
    steps: [...delAll(3, false), ARCHIVE, START],
    reason: [/vm1\.cpt: not valid JSON/],
  },
  {
    name: ".cpt with a gap in its numbering",
    snapshot: snap({ folder: folder(chainFiles(3), [cp(0), cp(2)]) }),
    kind: "new-chain",
    steps: [...delAll(3, false), ARCHIVE, START],
    reason: [/entry 1 should be virtnbdbackup\.1/],
  },

  /* --- killed incremental (seed rows 3/4, virtnbdbackup.md §4.5) --- */
  {
    name: "killed online inc, job still active, stale socket and scratch, fix allowed → repair",
    snapshot: snap({
      folder: killedInc,
      libvirtCheckpoints: cps(4),
      backupJobActive: true,
      staleTmp: { sockets: [SOCK], scratch: [SCRATCH], pidFiles: [] },
    }),
    kind: "repair",
    steps: [ABORT, { op: "clean-tmp", paths: [SOCK, SCRATCH] }, files(...leftovers(3, true)), del(cp(3), false), cpt(3)],
    reason: [/virtnbdbackup\.3, the newest/, /sda\.inc\.virtnbdbackup\.3\.data\.partial never finished/, /cut back to virtnbdbackup\.2/],
  },
  {
    name: "killed inc next to a user's file named like the checkpoint's files → that file is never in the cleanup",
    snapshot: snap({ folder: folder([...chainFiles(3), ...unfinished(3, true), "notes.virtnbdbackup.3.xml"], cps(4)), libvirtCheckpoints: cps(4) }),
    kind: "repair",
    steps: [files(...leftovers(3, true)), del(cp(3), false), cpt(3)],
    reason: [/cut back to virtnbdbackup\.2/],
  },
  {
    name: "same killed inc with VM_ALLOW_BACKUP_CHAIN_FIX off → clean the leaf, archive, new chain",
    snapshot: snap({ folder: killedInc, libvirtCheckpoints: cps(4), allowChainFix: false }),
    kind: "new-chain",
    steps: [files(...leftovers(3, true)), cpt(3), ...delAll(4, false), ARCHIVE, START],
    reason: [/VM_ALLOW_BACKUP_CHAIN_FIX is off/, /restores cleanly up to virtnbdbackup\.2/],
  },
  {
    name: "same killed inc in strict mode (after a host crash) → archive",
    snapshot: snap({ folder: killedInc, libvirtCheckpoints: cps(4), strict: true }),
    kind: "new-chain",
    steps: [files(...leftovers(3, true)), cpt(3), ...delAll(4, false), ARCHIVE, START],
    reason: [/strict mode/],
  },
  {
    name: "paused domain, killed inc with its job still active → repair live",
    snapshot: snap({ domainState: "paused", folder: killedInc, libvirtCheckpoints: cps(4), backupJobActive: true }),
    kind: "repair",
    steps: [ABORT, files(...leftovers(3, true)), del(cp(3), false), cpt(3)],
    reason: [/Repaired in place/],
  },
  {
    name: "killed inc at virtnbdbackup.11 leaves virtnbdbackup.1's files alone (exact matching)",
    snapshot: snap({ folder: folder([...chainFiles(11), ...unfinished(11, true)], cps(12)), libvirtCheckpoints: cps(12) }),
    kind: "repair",
    steps: [files(...leftovers(11, true)), del(cp(11), false), cpt(11)],
    reason: [/virtnbdbackup\.11/],
  },
  {
    name: ".cpt ahead of the data files, no partial (silent data-loss trap) → repair",
    snapshot: snap({ folder: folder([...chainFiles(2), ...unfinished(2, false)], cps(3)), libvirtCheckpoints: cps(3) }),
    kind: "repair",
    steps: [files(...leftovers(2, false)), del(cp(2), false), cpt(2)],
    reason: [/no data file \(sda\.inc\.virtnbdbackup\.2\.data missing\)/, /silently miss every change made since virtnbdbackup\.1/],
  },
  {
    name: "multi-disk inc: sda finished, sdb cut → the whole checkpoint goes",
    snapshot: snap({
      folder: folder([...chainFiles(2, ["sda", "sdb"]), ...sideFiles(2, ["sda", "sdb"]), "sda.inc.virtnbdbackup.2.data", "sdb.inc.virtnbdbackup.2.data.partial"], cps(3)),
      libvirtCheckpoints: cps(3),
    }),
    kind: "repair",
    steps: [
      files(
        "checkpoints/virtnbdbackup.2.xml",
        "sda.inc.virtnbdbackup.2.data",
        "sda.virtnbdbackup.2.qcow.json",
        "sdb.inc.virtnbdbackup.2.data.partial",
        "sdb.virtnbdbackup.2.qcow.json",
        "vmconfig.virtnbdbackup.2.xml",
      ),
      del(cp(2), false),
      cpt(2),
    ],
    reason: [/sdb\.inc\.virtnbdbackup\.2\.data\.partial never finished/],
  },
  {
    name: "repair resumed after the checkpoint was already deleted (libvirt = .cpt minus newest)",
    snapshot: snap({ folder: killedInc, libvirtCheckpoints: cps(3) }),
    kind: "repair",
    steps: [files(...leftovers(3, true)), cpt(3)],
    reason: [/cut back to virtnbdbackup\.2/],
  },
  {
    name: "libvirt's newest differs from .cpt's newest → no repair, only the leaf's files go",
    snapshot: snap({ folder: killedInc, libvirtCheckpoints: cps(2) }),
    kind: "new-chain",
    steps: [files(...leftovers(3, true)), cpt(3), ...delAll(2, false), ARCHIVE, START],
    reason: [/do not agree that virtnbdbackup\.3 is the newest/],
  },
  {
    name: "libvirt list empty with an unfinished leaf never wipes the folder",
    snapshot: snap({ folder: folder([...chainFiles(2), ...unfinished(2, false)], cps(3)), libvirtCheckpoints: [] }),
    kind: "new-chain",
    steps: [files(...leftovers(2, false)), cpt(2), ARCHIVE, START],
    reason: [/libvirt lists none/, /restores cleanly up to virtnbdbackup\.1/],
  },
  {
    name: "shut off, killed inc, fix allowed → metadata delete and exact bitmap removal",
    snapshot: snap({
      domainState: "shut off",
      folder: killedInc,
      libvirtCheckpoints: cps(4),
      bitmaps: { [IMG_A]: [...cps(4), "user-bitmap"], [IMG_B]: cps(4) },
    }),
    kind: "repair",
    steps: [files(...leftovers(3, true)), del(cp(3), true), rmBitmap(IMG_A, cp(3)), rmBitmap(IMG_B, cp(3)), cpt(3)],
    reason: [/metadata only/, /bitmap removed from \/vm\/vm1-a\.qcow2, \/vm\/vm1-b\.qcow2/],
  },
  {
    name: "shut off, killed inc, but an image lost its parent bitmaps → archive and prune",
    snapshot: snap({
      domainState: "shut off",
      folder: killedInc,
      libvirtCheckpoints: cps(4),
      bitmaps: { [IMG_A]: cps(2), [IMG_B]: cps(4) },
    }),
    kind: "new-chain",
    steps: [files(...leftovers(3, true)), cpt(3), ...delAll(4, true), ...rmBitmaps(IMG_A, 2), ...rmBitmaps(IMG_B, 4), ARCHIVE, START],
    reason: [/image \/vm\/vm1-a\.qcow2 has the bitmaps virtnbdbackup\.0, virtnbdbackup\.1 instead of/],
  },
  {
    name: "crash scenario: shut off, strict, libvirt metadata dropped, killed inc → archive with bitmap prune",
    snapshot: snap({ domainState: "shut off", folder: killedInc, libvirtCheckpoints: [], bitmaps: { [IMG_A]: cps(4) }, strict: true, bootChanged: true }),
    kind: "new-chain",
    steps: [files(...leftovers(3, true)), cpt(3), ...rmBitmaps(IMG_A, 4), ARCHIVE, START],
    reason: [/strict mode/],
  },
  {
    name: "killed offline inc rewriting a finished file: only the stray partial goes",
    snapshot: snap({
      domainState: "shut off",
      folder: folder([...chainFiles(3), "sda.inc.virtnbdbackup.2.data.partial"], cps(3)),
      bitmaps: { [IMG_A]: cps(3) },
      allowChainFix: false,
      staleTmp: { sockets: [], scratch: [], pidFiles: [NBD_PID] },
    }),
    kind: "repair",
    steps: [{ op: "kill-qemu-nbd", pidFiles: [NBD_PID] }, { op: "clean-tmp", paths: [NBD_PID] }, files("sda.inc.virtnbdbackup.2.data.partial")],
    reason: [/leftover sda\.inc\.virtnbdbackup\.2\.data\.partial/, /Partial backup found/],
  },
  {
    name: "stray diff partial beside a consistent chain is removed even with the fix off",
    snapshot: snap({ folder: folder([...chainFiles(3), "sda.diff.1795660497.data.partial"], cps(3)), allowChainFix: false }),
    kind: "repair",
    steps: [files("sda.diff.1795660497.data.partial")],
    reason: [/sda\.diff\.1795660497\.data\.partial/],
  },
  {
    name: "hole mid-chain with a later complete checkpoint (silent loss already happened)",
    snapshot: snap({ folder: folder(chainFiles(4).filter((f) => f !== "sda.inc.virtnbdbackup.2.data"), cps(4)), libvirtCheckpoints: cps(4) }),
    kind: "new-chain",
    steps: [...delAll(4, false), ARCHIVE, START],
    reason: [/virtnbdbackup\.2 of vm1 is incomplete/, /virtnbdbackup\.3 were taken on top of it/, /silent data loss/, /only up to virtnbdbackup\.1/],
  },

  /* --- complete chain, evidence disagrees (seed rows 8 and 10) --- */
  {
    name: "shut off, an image's bitmaps differ from .cpt → archive, prune metadata and bitmaps",
    snapshot: snap({ domainState: "shut off", bitmaps: { [IMG_A]: cps(2), [IMG_B]: cps(3) } }),
    kind: "new-chain",
    steps: [...delAll(3, true), ...rmBitmaps(IMG_A, 2), ...rmBitmaps(IMG_B, 3), ARCHIVE, START],
    reason: [/Image \/vm\/vm1-a\.qcow2 has the bitmaps virtnbdbackup\.0, virtnbdbackup\.1 but vm1\.cpt lists/],
  },
  {
    name: "shut off, libvirt lacks a checkpoint whose XML is gone → archive",
    snapshot: snap({
      domainState: "shut off",
      folder: folder(chainFiles(3).filter((f) => f !== "checkpoints/virtnbdbackup.2.xml"), cps(3)),
      libvirtCheckpoints: cps(2),
      bitmaps: { [IMG_A]: cps(3) },
    }),
    kind: "new-chain",
    steps: [...delAll(2, true), ...rmBitmaps(IMG_A, 3), ARCHIVE, START],
    reason: [/checkpoints\/virtnbdbackup\.2\.xml is missing/],
  },
  {
    name: "running, libvirt lists another folder's chain → archive and prune live",
    snapshot: snap({ libvirtCheckpoints: cps(1) }),
    kind: "new-chain",
    steps: [del(cp(0), false), ARCHIVE, START],
    reason: [/libvirt lists virtnbdbackup\.0 but vm1\.cpt lists virtnbdbackup\.0, virtnbdbackup\.1, virtnbdbackup\.2/],
  },
  {
    name: "running, the newest checkpoint is missing in libvirt → archive (no evidence of its bitmap)",
    snapshot: snap({ libvirtCheckpoints: cps(2) }),
    kind: "new-chain",
    steps: [...delAll(2, false), ARCHIVE, START],
    reason: [/libvirt lists virtnbdbackup\.0, virtnbdbackup\.1 but vm1\.cpt lists/],
  },
  {
    name: "shut off, the newest checkpoint is missing in libvirt but its bitmap and XML exist → keep",
    snapshot: snap({ domainState: "shut off", libvirtCheckpoints: cps(2), bitmaps: { [IMG_A]: cps(3) } }),
    kind: "keep",
    steps: [],
    reason: [/libvirt lacks virtnbdbackup\.2; virtnbdbackup redefines it/],
  },
  {
    name: "shut off after QEMU was killed: bitmaps untrustworthy → prune metadata and bitmaps, archive",
    snapshot: snap({ domainState: "shut off", qemuKilled: true, bitmaps: { [IMG_A]: cps(3) } }),
    kind: "new-chain",
    steps: [...delAll(3, true), ...rmBitmaps(IMG_A, 3), ARCHIVE, START],
    reason: [/QEMU stopped uncleanly/],
  },
  {
    name: "running, libvirt lost every checkpoint across a host reboot → shut down to check bitmaps",
    snapshot: snap({ libvirtCheckpoints: [], bootChanged: true, strict: true }),
    kind: "needs-user",
    steps: [SHUTDOWN],
    reason: [/lost the checkpoints of vm1 across the host restart/, /must be shut off/],
  },
  {
    name: "running, libvirt has no checkpoints without a reboot → archive",
    snapshot: snap({ libvirtCheckpoints: [] }),
    kind: "new-chain",
    steps: [ARCHIVE, START],
    reason: [/libvirt has no checkpoints for vm1/],
  },
  {
    name: "libvirt one ahead of .cpt (killed between checkpoint and .cpt write), fix on → drop it",
    snapshot: snap({ libvirtCheckpoints: cps(4) }),
    kind: "repair",
    steps: [del(cp(3), false)],
    reason: [/virtnbdbackup\.3 exists in libvirt but not in vm1\.cpt/],
  },
  {
    name: "libvirt one ahead of .cpt, fix off → archive",
    snapshot: snap({ libvirtCheckpoints: cps(4), allowChainFix: false }),
    kind: "new-chain",
    steps: [...delAll(4, false), ARCHIVE, START],
    reason: [/VM_ALLOW_BACKUP_CHAIN_FIX is off/],
  },
  {
    name: "shut off, bitmap of the unrecorded next checkpoint exists → metadata delete and bitmap removal",
    snapshot: snap({ domainState: "shut off", libvirtCheckpoints: cps(4), bitmaps: { [IMG_A]: cps(4), [IMG_B]: cps(3) } }),
    kind: "repair",
    steps: [del(cp(3), true), rmBitmap(IMG_A, cp(3))],
    reason: [/virtnbdbackup\.3 exists in libvirt or the disk bitmaps/],
  },
  {
    name: "QEMU was killed: bitmaps lost on a running domain → metadata-only prune, archive",
    snapshot: snap({ qemuKilled: true }),
    kind: "new-chain",
    steps: [...delAll(3, true), ARCHIVE, START],
    reason: [/QEMU stopped uncleanly/, /metadata only/],
  },

  /* --- user decisions and unsettled states (seed row 11 fixed) --- */
  {
    name: "foreign checkpoint blocks every backup → needs user, nothing touched",
    snapshot: snap({ libvirtCheckpoints: ["nightly-snap", ...cps(3)], backupJobActive: true }),
    kind: "needs-user",
    steps: [],
    reason: [/not made by virtnbdbackup: nightly-snap/],
  },
  {
    name: "shut off, bitmaps unreadable while stale qemu-nbd holds the image",
    snapshot: snap({ domainState: "shut off", bitmaps: null, staleTmp: { sockets: [], scratch: [], pidFiles: [NBD_PID] } }),
    kind: "needs-user",
    steps: [{ op: "kill-qemu-nbd", pidFiles: [NBD_PID] }, { op: "clean-tmp", paths: [NBD_PID] }],
    reason: [/bitmaps of shut-off vm1 could not be read/, /hold the image lock/],
  },
  {
    name: "crashed domain with a consistent chain is kept",
    snapshot: snap({ domainState: "crashed", backupJobActive: true }),
    kind: "keep",
    steps: [],
    reason: [/vm1 is crashed; judged by libvirt metadata only/],
  },
  {
    name: "pmsuspended domain with an unfinished checkpoint waits for the user",
    snapshot: snap({
      domainState: "pmsuspended",
      folder: killedInc,
      libvirtCheckpoints: cps(4),
      staleTmp: { sockets: [SOCK], scratch: [], pidFiles: [] },
    }),
    kind: "needs-user",
    steps: [{ op: "clean-tmp", paths: [SOCK] }],
    reason: [/vm1 is pmsuspended/, /virtnbdbackup\.3, the newest/],
  },
  {
    name: "domain in another state with no chain folder waits as well",
    snapshot: snap({ domainState: "other", folder: { dir: DIR, exists: false, files: [], cpt: null }, libvirtCheckpoints: [] }),
    kind: "needs-user",
    steps: [],
    reason: [/transitional or unknown state/, /no chain folder/],
  },
];

for (const row of rows) {
  test(`planChain: ${row.name}`, () => {
    const plan: ChainPlan = planChain(row.snapshot);
    assert.equal(plan.kind, row.kind, plan.reason);
    assert.deepEqual(plan.steps, row.steps, plan.reason);
    for (const pattern of row.reason) assert.match(plan.reason, pattern);
  });
}

/* ------------------------------------------------------------------ invariants over every row */

test("planChain invariants: no qemu-img on a non-shut-off domain, no folder wipe without the chain being unrestorable", () => {
  for (const row of rows) {
    const plan = planChain(row.snapshot);
    if (row.snapshot.domainState !== "shut off") {
      assert.ok(!plan.steps.some((s) => s.op === "remove-bitmap"), `${row.name}: remove-bitmap on a live domain`);
    }
    if (plan.steps.some((s) => s.op === "delete-folder")) {
      assert.ok(
        !row.snapshot.folder.files.some((f) => /\.(full|inc\.[^/]+)\.data$/.test(f.path) && !plan.reason.includes("interrupted")),
        `${row.name}: deletes a folder that holds a finished chain`,
      );
    }
    if (plan.kind === "needs-user") {
      assert.ok(
        plan.steps.every((s) => ["kill-qemu-nbd", "clean-tmp", "require-shutdown", "abort-job"].includes(s.op)),
        `${row.name}: needs-user must not change the chain`,
      );
    }
    assert.ok(!plan.steps.some((s) => s.op === "delete-files" && s.files.length === 0), `${row.name}: empty delete-files`);
    assert.ok(plan.reason.length > 0);
  }
});

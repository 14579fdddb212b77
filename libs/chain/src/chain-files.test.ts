import { test } from "node:test";
import * as assert from "node:assert/strict";
import type { ChainFolder } from "./chain-folder.js";
import {
  dataFiles,
  dataFilesOfCheckpoint,
  filesOfCheckpoint,
  hasChain,
  isCopyBackup,
  isEffectivelyEmpty,
  oldestMtime,
  partialFiles,
} from "./chain-files.js";

function folderOf(paths: string[], cpt: string[] | null = null): ChainFolder {
  return { dir: "/b/vm1", exists: true, files: paths.map((path, i) => ({ path, size: 1, mtimeMs: 1000 + i })), cpt };
}

/** A chain with checkpoints 0, 1 and 10, so substring matching would be caught. */
const TEN = [
  "vm1.cpt",
  "backup.full.01012024000000.log",
  "sda.full.data",
  "sdb.full.data",
  "sda.inc.virtnbdbackup.1.data",
  "sda.inc.virtnbdbackup.10.data",
  "sda.inc.virtnbdbackup.11.data.partial",
  "sda.diff.1795660497.data",
  "checkpoints/virtnbdbackup.0.xml",
  "checkpoints/virtnbdbackup.1.xml",
  "checkpoints/virtnbdbackup.10.xml",
  "checksums/virtnbdbackup.1.sha256",
  "checksums/virtnbdbackup.10.sha256",
  "vmconfig.virtnbdbackup.0.xml",
  "vmconfig.virtnbdbackup.1.xml",
  "vmconfig.virtnbdbackup.10.xml",
  "sda.virtnbdbackup.1.qcow.json",
  "sda.virtnbdbackup.10.qcow.json",
  "autostart.virtnbdbackup.1",
  "vm1_VARS.fd.virtnbdbackup.1",
  "vm1_VARS.fd.virtnbdbackup.10",
  "nested/sda.inc.virtnbdbackup.1.data",
];

interface Row {
  name: string;
  paths: string[];
  cpt?: string[] | null;
  data: string[];
  partial: string[];
  chain: boolean;
  empty: boolean;
  copy: boolean;
}

const rows: Row[] = [
  { name: "empty folder", paths: [], data: [], partial: [], chain: false, empty: true, copy: false },
  {
    name: "only logs, configs, qcow.json and checkpoints/ (a failed run's leftovers)",
    paths: ["backup.full.1.log", "vmconfig.virtnbdbackup.0.xml", "sda.virtnbdbackup.0.qcow.json", "checkpoints/x.xml"],
    data: [],
    partial: [],
    chain: false,
    empty: true,
    copy: false,
  },
  {
    name: "interrupted first full: partial only",
    paths: ["sda.full.data.partial", "backup.full.1.log"],
    data: [],
    partial: ["sda.full.data.partial"],
    chain: false,
    empty: false,
    copy: false,
  },
  {
    name: "finished copy backup",
    paths: ["sda.copy.data", "vmconfig.copy.xml"],
    data: ["sda.copy.data"],
    partial: [],
    chain: false,
    empty: false,
    copy: true,
  },
  {
    name: "interrupted copy backup",
    paths: ["sda.copy.data.partial"],
    data: [],
    partial: ["sda.copy.data.partial"],
    chain: false,
    empty: false,
    copy: true,
  },
  {
    name: "full backup with a raw disk written as copy is not a copy backup",
    paths: ["sda.full.data", "sdb.copy.data"],
    cpt: ["virtnbdbackup.0"],
    data: ["sda.full.data", "sdb.copy.data"],
    partial: [],
    chain: true,
    empty: false,
    copy: false,
  },
  {
    name: "chain with ten checkpoints",
    paths: TEN,
    data: ["sda.full.data", "sdb.full.data", "sda.inc.virtnbdbackup.1.data", "sda.inc.virtnbdbackup.10.data", "sda.diff.1795660497.data"],
    partial: ["sda.inc.virtnbdbackup.11.data.partial"],
    chain: true,
    empty: false,
    copy: false,
  },
  {
    name: "data files nested in a sub-folder do not count (engine globs the top level)",
    paths: ["old/sda.full.data"],
    data: [],
    partial: [],
    chain: false,
    empty: true,
    copy: false,
  },
  {
    name: "checksum file counts for the engine's *.data* glob",
    paths: ["sda.full.data.chksum"],
    data: [],
    partial: [],
    chain: false,
    empty: false,
    copy: false,
  },
  {
    name: "hidden file is ignored like the shell glob does",
    paths: [".sda.full.data"],
    data: [],
    partial: [],
    chain: false,
    empty: true,
    copy: false,
  },
];

for (const row of rows) {
  test(`chain-files classification: ${row.name}`, () => {
    const folder = folderOf(row.paths, row.cpt ?? null);
    assert.deepEqual(
      dataFiles(folder).map((f) => f.path),
      row.data,
    );
    assert.deepEqual(
      partialFiles(folder).map((f) => f.path),
      row.partial,
    );
    assert.equal(hasChain(folder), row.chain, "hasChain");
    assert.equal(isEffectivelyEmpty(folder), row.empty, "isEffectivelyEmpty");
    assert.equal(isCopyBackup(folder), row.copy, "isCopyBackup");
  });
}

interface CheckpointRow {
  name: string;
  checkpoint: string;
  data: string[];
  all: string[];
}

const checkpointRows: CheckpointRow[] = [
  {
    name: "virtnbdbackup.0 is the full backup",
    checkpoint: "virtnbdbackup.0",
    data: ["sda.full.data", "sdb.full.data"],
    all: ["sda.full.data", "sdb.full.data", "checkpoints/virtnbdbackup.0.xml", "vmconfig.virtnbdbackup.0.xml"],
  },
  {
    name: "virtnbdbackup.1 never matches virtnbdbackup.10 or .11",
    checkpoint: "virtnbdbackup.1",
    data: ["sda.inc.virtnbdbackup.1.data"],
    all: [
      "sda.inc.virtnbdbackup.1.data",
      "checkpoints/virtnbdbackup.1.xml",
      "checksums/virtnbdbackup.1.sha256",
      "vmconfig.virtnbdbackup.1.xml",
      "sda.virtnbdbackup.1.qcow.json",
      "autostart.virtnbdbackup.1",
      "vm1_VARS.fd.virtnbdbackup.1",
    ],
  },
  {
    name: "virtnbdbackup.10 with its own files only",
    checkpoint: "virtnbdbackup.10",
    data: ["sda.inc.virtnbdbackup.10.data"],
    all: [
      "sda.inc.virtnbdbackup.10.data",
      "checkpoints/virtnbdbackup.10.xml",
      "checksums/virtnbdbackup.10.sha256",
      "vmconfig.virtnbdbackup.10.xml",
      "sda.virtnbdbackup.10.qcow.json",
      "vm1_VARS.fd.virtnbdbackup.10",
    ],
  },
  {
    name: "unfinished virtnbdbackup.11: only its partial",
    checkpoint: "virtnbdbackup.11",
    data: [],
    all: ["sda.inc.virtnbdbackup.11.data.partial"],
  },
  { name: "unknown checkpoint owns nothing", checkpoint: "virtnbdbackup.2", data: [], all: [] },
  { name: "empty name owns nothing (the seed wiped the folder)", checkpoint: "", data: [], all: [] },
];

for (const row of checkpointRows) {
  test(`files of checkpoint: ${row.name}`, () => {
    const folder = folderOf(TEN);
    assert.deepEqual(
      dataFilesOfCheckpoint(folder, row.checkpoint).map((f) => f.path),
      row.data,
    );
    assert.deepEqual(
      filesOfCheckpoint(folder, row.checkpoint)
        .map((f) => f.path)
        .sort(),
      [...row.all].sort(),
    );
  });
}

const mtimeRows: { name: string; mtimes: number[]; oldest: number | null }[] = [
  { name: "no files", mtimes: [], oldest: null },
  { name: "one file", mtimes: [5], oldest: 5 },
  { name: "oldest is not first", mtimes: [9, 3.5, 7], oldest: 3.5 },
];

for (const row of mtimeRows) {
  test(`oldestMtime: ${row.name}`, () => {
    const folder: ChainFolder = {
      dir: "/x",
      exists: true,
      files: row.mtimes.map((mtimeMs, i) => ({ path: `f${i}`, size: 0, mtimeMs })),
      cpt: null,
    };
    assert.equal(oldestMtime(folder), row.oldest);
  });
}

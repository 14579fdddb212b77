import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { filterExtraArgs } from "./engine-capabilities.js";
import { engineBytesToCopy, parseEngineLine } from "./run-backup.js";
import { convertProgress, judgeImageCheck, parseVirtualSize } from "./qemu-img.js";

describe("parseEngineLine", () => {
  const rows: [string, ReturnType<typeof parseEngineLine>][] = [
    ["[2026-11-26 02:34:52] INFO root virtnbdbackup - backupDisk [sda]: 2097152 bytes of data extents to backup", { level: "INFO", message: "2097152 bytes of data extents to backup" }],
    ["[2026-11-26 02:34:52] ERROR root virtnbdbackup - main [MainThread]: Partial backup found in target directory", { level: "ERROR", message: "Partial backup found in target directory" }],
    ["[2026-11-26 02:34:52] CRITICAL root nbdcli - pread [vda]: nbd_pread: ENOTCONN", { level: "CRITICAL", message: "nbd_pread: ENOTCONN" }],
    ["Traceback (most recent call last):", undefined],
  ];
  for (const [line, expected] of rows) it(`parses ${JSON.stringify(line.slice(0, 40))}`, () => assert.deepEqual(parseEngineLine(line), expected));
});

describe("engineBytesToCopy", () => {
  it("reads a disk's announced data from its line, and nothing from other lines", () => {
    assert.equal(engineBytesToCopy("[2026-11-26 02:34:52] INFO root virtnbdbackup - backupDisk [sda]: 2097152 bytes of data extents to backup"), 2097152);
    assert.equal(engineBytesToCopy("[2026-11-26 02:34:52] INFO root virtnbdbackup - backupDisk [sda]: 10737418240 bytes disk size"), undefined);
    assert.equal(engineBytesToCopy("2097152 bytes of data extents to backup"), undefined, "not an engine log line");
  });
});

describe("filterExtraArgs", () => {
  const caps = { version: "1.9.15", options: new Set(["--compress", "--noprogress", "--worker", "--scratchdir"]) };
  it("keeps supported options and drops --start-domain and unknown ones with a reason", () => {
    const r = filterExtraArgs(["--compress=2", "--start-domain", "--nocolor", "--worker", "2"], caps);
    assert.deepEqual(r.args, ["--compress=2", "--worker", "2"]);
    assert.deepEqual(
      r.dropped.map((d) => d.arg),
      ["--start-domain", "--nocolor"],
    );
    assert.match(r.dropped[1]!.reason, /not supported by virtnbdbackup 1\.9\.15/);
  });
});

describe("judgeImageCheck (qemu-img check exit status)", () => {
  const rows: [name: string, exit: number | undefined, output: string, ok: boolean, unsupported: boolean, detail: RegExp][] = [
    ["clean", 0, "No errors were found on the image.", true, false, /^$/],
    ["leaked clusters only", 3, "2 leaked clusters were found on the image.", true, false, /^$/],
    ["raw image: no check", 63, "qemu-img: This image format does not support checks", true, true, /^$/],
    ["corruption", 2, "ERROR cluster 5 refcount=0 reference=1\n1 errors were found on the image.", false, false, /^exit 2: ERROR cluster 5 .*; 1 errors were found/],
    ["check not completed", 1, "qemu-img: Could not open 'x'", false, false, /^exit 1: qemu-img: Could not open/],
    ["killed", undefined, "", false, false, /^exit \?$/],
  ];
  for (const [name, exit, output, ok, unsupported, detail] of rows)
    it(name, () => {
      const v = judgeImageCheck(exit, output);
      assert.deepEqual([v.ok, v.unsupported], [ok, unsupported]);
      assert.match(v.detail, detail);
    });
});

describe("parseVirtualSize (qemu-img info / *.qcow.json)", () => {
  const rows: [string, number | undefined][] = [
    ['{"virtual-size": 67108864, "filename": "/img/vm.qcow2", "format": "qcow2"}', 67108864],
    ['{"virtual-size": 0}', 0],
    ['{"virtual-size": "64M"}', undefined],
    ['{"virtual-size": -1}', undefined],
    ['{"filename": "/img/vm.qcow2"}', undefined],
  ];
  for (const [json, size] of rows) it(json, () => assert.equal(parseVirtualSize(json), size));
});

describe("convertProgress (qemu-img convert -p)", () => {
  const rows: [string, number | undefined][] = [
    ["    (0.00/100%)", 0],
    ["    (42.19/100%)", 0.4219],
    ["    (100.00/100%)", 1],
    ["qemu-img: Could not open 'x': No such file or directory", undefined],
    ["", undefined],
  ];
  for (const [text, fraction] of rows) it(JSON.stringify(text), () => assert.equal(convertProgress(text), fraction));
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { filterExtraArgs } from "./engine-capabilities.js";
import { parseEngineLine } from "./run-backup.js";

describe("parseEngineLine", () => {
  const rows: [string, ReturnType<typeof parseEngineLine>][] = [
    ["[2026-11-26 02:34:52] INFO root virtnbdbackup - backupDisk [sda]: 2097152 bytes of data extents to backup", { level: "INFO", message: "2097152 bytes of data extents to backup" }],
    ["[2026-11-26 02:34:52] ERROR root virtnbdbackup - main [MainThread]: Partial backup found in target directory", { level: "ERROR", message: "Partial backup found in target directory" }],
    ["[2026-11-26 02:34:52] CRITICAL root nbdcli - pread [vda]: nbd_pread: ENOTCONN", { level: "CRITICAL", message: "nbd_pread: ENOTCONN" }],
    ["Traceback (most recent call last):", undefined],
  ];
  for (const [line, expected] of rows) it(`parses ${JSON.stringify(line.slice(0, 40))}`, () => assert.deepEqual(parseEngineLine(line), expected));
});

describe("filterExtraArgs", () => {
  const caps = { version: "1.9.15", options: new Set(["--compress", "--noprogress", "--worker", "--scratchdir"]) };
  it("keeps supported options and drops ours, --start-domain and unknown ones with a reason", () => {
    const r = filterExtraArgs(["--compress=2", "--start-domain", "--nocolor", "-o", "/elsewhere", "--worker", "2"], caps);
    assert.deepEqual(r.args, ["--compress=2", "--worker", "2"]);
    assert.deepEqual(
      r.dropped.map((d) => d.arg),
      ["--start-domain", "--nocolor", "-o"],
    );
    assert.match(r.dropped[1]!.reason, /not supported by virtnbdbackup 1\.9\.15/);
  });
});

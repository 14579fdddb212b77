import { test } from "node:test";
import { createHash } from "node:crypto";
import * as assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readChainFolder } from "./chain-folder.js";
import { filesOfCheckpoint, isToolFile } from "./chain-files.js";
import { checksumFileOf, formatChecksums, judgeChecksums, parseChecksums, recordChecksums, verifyChecksums, type ParsedChecksums } from "./checksums.js";

const A = "a".repeat(64);
const B = "b".repeat(64);

test("formatChecksums writes sha256sum text lines sorted by name", () => {
  assert.equal(formatChecksums([{ file: "vdb.full.data", sha256: B }, { file: "vda.full.data", sha256: A }]), `${A}  vda.full.data\n${B}  vdb.full.data\n`);
});

const unformattable: [string, { file: string; sha256: string }][] = [
  ["short hash", { file: "vda.full.data", sha256: "abc" }],
  ["upper-case hash (sha256sum writes lower case)", { file: "vda.full.data", sha256: A.toUpperCase() }],
  ["newline in the name", { file: "vda\n.data", sha256: A }],
  ["backslash in the name (sha256sum would escape it)", { file: "vd\\a.data", sha256: A }],
  ["empty name", { file: "", sha256: A }],
];
for (const [name, entry] of unformattable)
  test(`formatChecksums refuses: ${name}`, () => assert.throws(() => formatChecksums([entry]), RangeError));

const parseRows: [name: string, text: string, expected: ParsedChecksums][] = [
  ["text mode", `${A}  vda.inc.virtnbdbackup.2.data\n`, { ok: true, entries: [{ file: "vda.inc.virtnbdbackup.2.data", sha256: A }] }],
  ["binary mode, upper case, blank lines", `\n${A.toUpperCase()} *vda.full.data\n\n${B}  vdb.full.data`, { ok: true, entries: [{ file: "vda.full.data", sha256: A }, { file: "vdb.full.data", sha256: B }] }],
  ["name with spaces", `${A}  my disk.full.data\n`, { ok: true, entries: [{ file: "my disk.full.data", sha256: A }] }],
  ["empty", "\n", { ok: false, reason: "it lists no file" }],
  ["garbage line", `${A}  vda.full.data\nnot a line\n`, { ok: false, reason: 'line 2 is not "<sha256>  <file>"' }],
  ["short hash", `abc  vda.full.data\n`, { ok: false, reason: 'line 1 is not "<sha256>  <file>"' }],
  ["absolute name", `${A}  /etc/passwd\n`, { ok: false, reason: 'line 1 names "/etc/passwd", outside the chain folder' }],
  ["name climbing out", `${A}  ../other/vda.full.data\n`, { ok: false, reason: 'line 1 names "../other/vda.full.data", outside the chain folder' }],
];
for (const [name, text, expected] of parseRows) test(`parseChecksums: ${name}`, () => assert.deepEqual(parseChecksums(text), expected));

const cp = "virtnbdbackup.2";
const data = "vda.inc.virtnbdbackup.2.data";
const sums = checksumFileOf(cp);
const judgeRows: [name: string, recorded: ParsedChecksums | undefined, present: string[], actual: [string, string][], verified: string[], unverified: string[], faults: { file: string; reason: RegExp }[]][] = [
  ["matches", { ok: true, entries: [{ file: data, sha256: A }] }, [data], [[data, A]], [data], [], []],
  ["one flipped byte", { ok: true, entries: [{ file: data, sha256: A }] }, [data], [[data, B]], [], [], [{ file: data, reason: /does not match its recorded sha256/ }]],
  ["recorded file gone", { ok: true, entries: [{ file: data, sha256: A }] }, [], [], [], [], [{ file: data, reason: /is missing, though checksums\/virtnbdbackup\.2\.sha256 records it/ }]],
  ["no checksum file (older backup): unverified, no fault", undefined, [data], [], [], [data], []],
  ["a second disk nobody recorded", { ok: true, entries: [{ file: data, sha256: A }] }, [data, "vdb.inc.virtnbdbackup.2.data"], [[data, A]], [data], ["vdb.inc.virtnbdbackup.2.data"], []],
  ["unreadable checksum file", { ok: false, reason: "it lists no file" }, [data], [], [], [data], [{ file: sums, reason: /unreadable: it lists no file/ }]],
];
for (const [name, recorded, present, actual, verified, unverified, faults] of judgeRows)
  test(`judgeChecksums: ${name}`, () => {
    const v = judgeChecksums(cp, recorded, present, new Map(actual));
    assert.deepEqual(v.verified, verified);
    assert.deepEqual(v.unverified, unverified);
    assert.equal(v.faults.length, faults.length, JSON.stringify(v.faults));
    for (const [i, f] of faults.entries()) {
      assert.equal(v.faults[i]!.checkpoint, cp);
      assert.equal(v.faults[i]!.file, f.file);
      assert.match(v.faults[i]!.reason, f.reason);
    }
  });

test("recordChecksums hashes only the checkpoint's own data files, atomically; verifyChecksums finds one flipped byte", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-checksums-"));
  try {
    await writeFile(join(dir, "vda.full.data"), "full");
    await writeFile(join(dir, "vda.inc.virtnbdbackup.1.data"), "one");
    await writeFile(join(dir, "vda.inc.virtnbdbackup.10.data"), "ten");
    await writeFile(join(dir, "vda.inc.virtnbdbackup.1.data.partial"), "unfinished");
    const folder = await readChainFolder(dir, "vm1");
    assert.deepEqual(await recordChecksums(folder, "virtnbdbackup.1"), [{ file: "vda.inc.virtnbdbackup.1.data", sha256: "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed" }]);
    assert.deepEqual(await readdir(join(dir, "checksums")), ["virtnbdbackup.1.sha256"], "no temporary file left");
    assert.equal(await readFile(join(dir, "checksums/virtnbdbackup.1.sha256"), "utf8"), "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed  vda.inc.virtnbdbackup.1.data\n");
    assert.deepEqual(await recordChecksums(folder, "virtnbdbackup.5"), [], "a checkpoint without data records nothing");

    const again = await readChainFolder(dir, "vm1");
    assert.deepEqual(await verifyChecksums(again, "virtnbdbackup.1"), { verified: ["vda.inc.virtnbdbackup.1.data"], unverified: [], faults: [] });
    assert.deepEqual((await verifyChecksums(again, "virtnbdbackup.0")).unverified, ["vda.full.data"]);
    await writeFile(join(dir, "vda.inc.virtnbdbackup.1.data"), "onf");
    const flipped = await verifyChecksums(again, "virtnbdbackup.1");
    assert.deepEqual(flipped.faults.map((f) => [f.checkpoint, f.file]), [["virtnbdbackup.1", "vda.inc.virtnbdbackup.1.data"]]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("recordChecksums takes a digest made while the file was written only when it covers the whole file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-checksums-"));
  try {
    await writeFile(join(dir, "vda.full.data"), "full");
    await writeFile(join(dir, "vda.inc.virtnbdbackup.1.data"), "one");
    const folder = await readChainFolder(dir, "vm1");
    const streamed = new Map([
      ["vda.full.data", { sha256: "a".repeat(64), bytes: 4 }],
      ["vda.inc.virtnbdbackup.1.data", { sha256: "b".repeat(64), bytes: 2 }],
    ]);
    assert.deepEqual(await recordChecksums(folder, "virtnbdbackup.0", undefined, streamed), [{ file: "vda.full.data", sha256: "a".repeat(64) }]);
    assert.deepEqual(await recordChecksums(folder, "virtnbdbackup.1", undefined, streamed), [
      { file: "vda.inc.virtnbdbackup.1.data", sha256: createHash("sha256").update("one").digest("hex") },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the TPM state copy of a checkpoint is checksummed with its data (never another checkpoint's), a tool file removed with it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-checksums-"));
  const sha = (text: string) => createHash("sha256").update(text).digest("hex");
  try {
    await writeFile(join(dir, "vda.inc.virtnbdbackup.1.data"), "one");
    await writeFile(join(dir, "tpm2-00.permall.virtnbdbackup.1"), "tpm one");
    await writeFile(join(dir, "tpm2-00.permall.virtnbdbackup.10"), "tpm ten");
    const folder = await readChainFolder(dir, "vm1");
    assert.deepEqual(await recordChecksums(folder, "virtnbdbackup.1"), [
      { file: "vda.inc.virtnbdbackup.1.data", sha256: sha("one") },
      { file: "tpm2-00.permall.virtnbdbackup.1", sha256: sha("tpm one") },
    ]);
    assert.ok(isToolFile("tpm2-00.permall.virtnbdbackup.1", "vm1"));
    assert.deepEqual(filesOfCheckpoint(folder, "virtnbdbackup.1").map((f) => f.path).sort(), ["tpm2-00.permall.virtnbdbackup.1", "vda.inc.virtnbdbackup.1.data"]);
    await writeFile(join(dir, "tpm2-00.permall.virtnbdbackup.1"), "tpm on3");
    const changed = await verifyChecksums(await readChainFolder(dir, "vm1"), "virtnbdbackup.1");
    assert.deepEqual(changed.faults.map((f) => f.file), ["tpm2-00.permall.virtnbdbackup.1"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

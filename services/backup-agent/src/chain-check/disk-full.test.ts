import { test } from "node:test";
import assert from "node:assert/strict";
import type { ChainPlan } from "@vmbs/chain";
import { isOutOfSpace, keepChainOnFullDisk, LOW_SPACE_BYTES } from "./disk-full.js";

const GiB = 1024 ** 3;
const roomy = { freeBytes: 50 * GiB, totalBytes: 100 * GiB };

const rows: [name: string, reason: string, space: { freeBytes: number; totalBytes: number } | undefined, full: boolean][] = [
  ["Python's OSError", "virtnbdbackup: [Errno 28] No space left on device", roomy, true],
  ["plain message", "virtnbdbackup: write failed: No space left on device", roomy, true],
  ["errno name", "could not run the backup: ENOSPC: no space left on device, write", roomy, true],
  ["quota", "virtnbdbackup: [Errno 122] Disk quota exceeded", roomy, true],
  ["statfs: almost nothing left", "virtnbdbackup: Error during backup", { freeBytes: 1024, totalBytes: 100 * GiB }, true],
  ["statfs: little left, but not under 5 %", "virtnbdbackup: Error", { freeBytes: LOW_SPACE_BYTES - 1, totalBytes: 100 * 1024 * 1024 }, false],
  ["other failure with room", "virtnbdbackup: Domain not found", roomy, false],
  ["Errno 280 is not 28", "virtnbdbackup: [Errno 280] something", roomy, false],
  ["unknown space, other failure", "virtnbdbackup: timeout", undefined, false],
];
for (const [name, reason, space, full] of rows) {
  test(`isOutOfSpace: ${name}`, () => assert.equal(isOutOfSpace(reason, space), full));
}

const plans: [name: string, plan: ChainPlan, kept: boolean][] = [
  ["repair in place stands", { kind: "repair", reason: "r", steps: [{ op: "delete-files", files: ["a.partial"] }, { op: "rewrite-cpt", checkpoints: ["virtnbdbackup.0"] }] }, true],
  ["keep stands", { kind: "keep", reason: "k", steps: [] }, true],
  ["archive and new full becomes needs-user", { kind: "new-chain", reason: "n", steps: [{ op: "abort-job" }, { op: "delete-checkpoint", name: "virtnbdbackup.1", metadataOnly: false }, { op: "archive-folder" }, { op: "start-new-chain" }] }, false],
];
for (const [name, plan, kept] of plans) {
  test(`keepChainOnFullDisk: ${name}`, () => {
    const out = keepChainOnFullDisk(plan, "free space 0.0 MiB of 24.0 MiB on /b");
    if (kept) return assert.deepEqual(out, plan);
    assert.equal(out.kind, "needs-user");
    assert.match(out.reason, /^backup disk full: free space 0\.0 MiB of 24\.0 MiB on \/b, the chain is kept/);
    assert.ok(out.steps.every((s) => s.op === "abort-job" || s.op === "kill-qemu-nbd" || s.op === "clean-tmp"), "nothing of the chain is touched");
  });
}

test("keepChainOnFullDisk: an interrupted first backup is still deleted (frees space), its full is not started now", () => {
  const plan: ChainPlan = { kind: "delete-partial-chain", reason: "d.", steps: [{ op: "delete-checkpoint", name: "virtnbdbackup.0", metadataOnly: false }, { op: "delete-folder" }, { op: "start-new-chain" }] };
  const out = keepChainOnFullDisk(plan, "free space 1.0 MiB of 24.0 MiB on /b");
  assert.deepEqual(out.steps, plan.steps.slice(0, 2));
  assert.match(out.reason, /^d\. On the full disk \(free space 1\.0 MiB of 24\.0 MiB on \/b\) that full waits/);
});

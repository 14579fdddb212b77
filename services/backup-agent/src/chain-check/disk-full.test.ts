import { test } from "node:test";
import assert from "node:assert/strict";
import { isOutOfSpace, LOW_SPACE_BYTES } from "./disk-full.js";

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

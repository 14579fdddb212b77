import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backupRootMarker } from "@vmbs/contracts";
import { backupRootId, BackupRootMarkerError } from "./backup-root-id.js";

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "vmbs-root-id-"));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test("the first agent writes its host id; every later one, of any host, reads it", () =>
  withRoot(async (root) => {
    assert.equal(await backupRootId(root, "hv1"), "hv1");
    assert.deepEqual(JSON.parse(await readFile(join(root, backupRootMarker), "utf8")), { id: "hv1" });
    assert.equal(await backupRootId(root, "hv2"), "hv1");
  }));

test("two agents starting at once agree on one id (exclusive create)", () =>
  withRoot(async (root) => {
    const ids = await Promise.all(["a1", "b2", "c3", "d4"].map((h) => backupRootId(root, h)));
    assert.equal(new Set(ids).size, 1, ids.join(","));
  }));

const corrupt: [name: string, content: string, message: RegExp][] = [
  ["empty (a crash right after the create)", "", /invalid content/],
  ["not JSON", "{id:", /not valid JSON/],
  ["id with a dot (would split the lease key)", JSON.stringify({ id: "a.b" }), /host token/],
  ["id with a wildcard", JSON.stringify({ id: "*" }), /host token/],
  ["extra keys", JSON.stringify({ id: "hv1", more: 1 }), /invalid content/],
  ["wrong type", JSON.stringify({ id: 7 }), /invalid content/],
];
for (const [name, content, message] of corrupt) {
  test(`a corrupt marker is a clear error and is never replaced: ${name}`, () =>
    withRoot(async (root) => {
      await writeFile(join(root, backupRootMarker), content);
      const err = await backupRootId(root, "hv1").then(
        () => assert.fail("accepted a corrupt marker"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BackupRootMarkerError);
      assert.match(err.message, message);
      assert.match(err.message, /\.vm-babysitter-root/);
      assert.equal(await readFile(join(root, backupRootMarker), "utf8"), content, "left as found");
    }));
}

test("an invalid own host id is refused before anything is written", () =>
  withRoot(async (root) => {
    await assert.rejects(backupRootId(root, "a.b"), TypeError);
    await assert.rejects(readFile(join(root, backupRootMarker)), /ENOENT/);
  }));

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { followDataFiles } from "./streamed-checksums.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("hashing data files while they are written", () => {
  it("follows each .data.partial file front to back across its rename, as the engine writes it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-streamed-"));
    try {
      const hasher = followDataFiles(dir);
      const written: Buffer[] = [];
      await writeFile(join(dir, "vda.full.data.partial"), "");
      await writeFile(join(dir, "vda.full.data.partial.log"), "not a data file");
      for (let i = 0; i < 12; i++) {
        const chunk = randomBytes(700 * 1024 + i);
        written.push(chunk);
        await appendFile(join(dir, "vda.full.data.partial"), chunk);
        await sleep(15);
      }
      // A second disk, and the rename that ends each file; the engine then exits.
      await writeFile(join(dir, "vdb.full.data.partial"), "second disk");
      await sleep(200);
      // What the progress messages report: every byte written so far, both disks.
      assert.equal(hasher.bytesSoFar(), written.reduce((sum, b) => sum + b.length, 0) + "second disk".length);
      await appendFile(join(dir, "vdb.full.data.partial"), " and more");
      await rename(join(dir, "vda.full.data.partial"), join(dir, "vda.full.data"));
      await rename(join(dir, "vdb.full.data.partial"), join(dir, "vdb.full.data"));
      const digests = await hasher.finish();
      const all = Buffer.concat(written);
      assert.deepEqual(Object.fromEntries(digests), {
        "vda.full.data": { sha256: sha256(all), bytes: all.length },
        "vdb.full.data": { sha256: sha256(Buffer.from("second disk and more")), bytes: 20 },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("follows only partial data files: a finished file has no digest (recordChecksums hashes it), and stop() ends a follower", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-streamed-"));
    try {
      await writeFile(join(dir, "vda.inc.virtnbdbackup.1.data"), "finished before the follower looked");
      const hasher = followDataFiles(dir);
      await sleep(120);
      assert.deepEqual([...(await hasher.finish()).keys()], []);

      const stopped = followDataFiles(dir);
      await writeFile(join(dir, "vda.inc.virtnbdbackup.2.data.partial"), "never finished");
      await sleep(120);
      await stopped.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

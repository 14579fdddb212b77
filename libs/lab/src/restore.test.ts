import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { execa } from "execa";
import { RestoreError, runEngineBackup, runEngineRestore } from "@vmbs/virt";
import { createLab, imageDigest, type Lab } from "./index.js";

const MiB = 1024 * 1024;

describe("runEngineRestore (libs/virt) on a chain made by virtnbdbackup", () => {
  let lab: Lab;
  before(async () => {
    lab = await createLab();
  });
  after(async () => {
    await lab.cleanup();
  });

  it("restores the whole chain, up to a checkpoint and one disk, and names its failures", async () => {
    const name = `${lab.domainPrefix}${randomBytes(4).toString("hex")} restore`;
    await lab.createDomain({ name });
    const chain = join(await lab.tempDir("vmbs-chain-"), "chain");
    const backup = async (level: "full" | "inc") => {
      const r = await runEngineBackup({ domain: name, level, outputDir: chain, uri: lab.uri });
      assert.ok(r.succeeded, r.lines.join("\n"));
    };
    await lab.writeGuest(name, { offset: 0, length: 2 * MiB, pattern: 0x5a });
    await backup("full");
    const atFull = await lab.diskDigest(name);
    await lab.writeGuest(name, { offset: 8 * MiB, length: 3 * MiB, pattern: 0xc3 });
    await backup("inc");
    const atInc = await lab.diskDigest(name);
    assert.notEqual(atInc, atFull);

    const whole = await runEngineRestore({ inputDir: chain, outputDir: await lab.tempDir("vmbs-restore-") });
    assert.equal(whole.images.length, 1);
    assert.equal(await imageDigest(whole.images[0]!), atInc, "the whole chain restores the disk as of the incremental");

    const first = await runEngineRestore({ inputDir: chain, outputDir: await lab.tempDir("vmbs-restore-"), untilCheckpoint: "virtnbdbackup.0" });
    assert.equal(await imageDigest(first.images[0]!), atFull, "--until virtnbdbackup.0 restores the disk as of the full");

    const vda = await runEngineRestore({ inputDir: chain, outputDir: join(await lab.tempDir("vmbs-restore-"), "new"), disk: "vda" });
    const same = await execa("qemu-img", ["compare", "--", whole.images[0]!, vda.images[0]!], { reject: false, stdin: "ignore", timeout: 120_000 });
    assert.equal(same.exitCode, 0, `qemu-img compare: ${same.stdout}${same.stderr}`);
    const differs = await execa("qemu-img", ["compare", "--", whole.images[0]!, first.images[0]!], { reject: false, stdin: "ignore", timeout: 120_000 });
    assert.equal(differs.exitCode, 1, "the two restore points differ");

    await assert.rejects(
      runEngineRestore({ inputDir: await lab.tempDir("vmbs-empty-"), outputDir: await lab.tempDir("vmbs-restore-") }),
      (err: unknown) => err instanceof RestoreError && err.kind === "exit" && err.exitCode !== 0,
    );
    await assert.rejects(
      runEngineRestore({ inputDir: chain, outputDir: await lab.tempDir("vmbs-restore-"), timeoutMs: 1 }),
      (err: unknown) => err instanceof RestoreError && err.kind === "timeout",
    );
  });
});

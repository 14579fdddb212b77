import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { open, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { waitFor, type AgentHarness } from "@vmbs/lab";
import { subjects, type DrillEvent } from "@vmbs/contracts";
import { createRestoreLabKit } from "./testing/restore-lab-kit.js";

const MiB = 1024 * 1024;
const host = "drillhost";

describe("restore drills: checksums recorded by the agent, re-checked and restored over NATS", () => {
  const lab = createRestoreLabKit(host);
  const { drills: events } = lab;
  let h: AgentHarness;
  const drill = async (body: string, requestId: string): Promise<DrillEvent> => {
    h.nc.publish(subjects.cmd.drill(host), body);
    return waitFor(() => events.find((e) => e.requestId === requestId && e.type !== "started"), { timeoutMs: 120_000, what: `drill ${requestId} to end` });
  };

  before(async () => {
    h = await lab.start();
    await lab.startService();
  });
  after(() => lab.stop());

  it("a full and 2 incrementals pass sha256sum -c and a drill; one flipped byte in virtnbdbackup.2's data fails the drill naming that checkpoint and file; bad commands fail clearly", async () => {
    const dom = await h.lab.createDomain({ sizeMiB: 32 });
    const chain = join(h.backupRoot, dom.name);
    // Enough data for the agent to hash the full's data file while the engine writes it.
    await h.lab.writeGuest(dom.name, { offset: 16 * MiB, length: 16 * MiB, pattern: 0x44 });
    for (const [i, pattern] of [0x11, 0x22, 0x33].entries()) {
      await h.lab.writeGuest(dom.name, { offset: i * 4 * MiB, length: 2 * MiB, pattern });
      h.publishRaw(JSON.stringify({ domain: dom.name, requestId: `b${i}` }));
      const done = await h.waitEvent((e) => e.requestId === `b${i}` && e.type !== "started");
      assert.equal(done.type, "completed", JSON.stringify(done));
      // Recorded before the run ends (while it holds the chain's lease), not some time later.
      assert.ok((await stat(join(chain, `checksums/${done.checkpoint}.sha256`))).size > 0, `checksums of ${done.checkpoint} when it completed`);
    }
    const cps = ["virtnbdbackup.0", "virtnbdbackup.1", "virtnbdbackup.2"];
    assert.deepEqual((await readdir(join(chain, "checksums"))).sort(), cps.map((c) => `${c}.sha256`), "one checksum file per checkpoint, no temporary left");
    assert.match(await readFile(join(chain, "checksums/virtnbdbackup.2.sha256"), "utf8"), /^[0-9a-f]{64} {2}vda\.inc\.virtnbdbackup\.2\.data\n$/, "only the new data file of the run");
    // The stock tool a person would use.
    const sums = await execa("sha256sum", ["-c", ...cps.map((c) => `checksums/${c}.sha256`)], { cwd: chain, reject: false, timeout: 60_000 });
    assert.equal(sums.exitCode, 0, sums.stderr);
    assert.deepEqual(sums.stdout.trim().split("\n").sort(), ["vda.full.data: OK", "vda.inc.virtnbdbackup.1.data: OK", "vda.inc.virtnbdbackup.2.data: OK"]);

    // A malformed command and an unknown domain: clear failures, nothing run, and the service goes on.
    h.nc.publish(subjects.cmd.drill(host), "{not json");
    const refused = await waitFor(() => events.find((e) => e.type === "failed" && /refused/.test(e.reason ?? "")), { timeoutMs: 30_000, what: "the refusal" });
    assert.match(refused.reason ?? "", /drill command refused: payload is not valid JSON/);
    const unknown = await drill(JSON.stringify({ domain: "no-such-vm", requestId: "unknown" }), "unknown");
    assert.equal(unknown.type, "failed");
    assert.match(unknown.reason ?? "", /no backup set of "no-such-vm"/);

    // Checksums of older backups may be missing: unverified, not a failure.
    await rm(join(chain, "checksums/virtnbdbackup.0.sha256"));
    const clean = await drill(JSON.stringify({ domain: dom.name, requestId: "clean" }), "clean");
    assert.equal(clean.type, "completed", JSON.stringify(clean));
    assert.deepEqual(events.filter((e) => e.requestId === "clean").map((e) => e.type), ["started", "completed"]);
    const [result] = clean.chains ?? [];
    assert.equal(clean.chains?.length, 1);
    assert.deepEqual([result!.set, result!.checkpoint, result!.checkpoints, result!.verifiedFiles, result!.unverifiedFiles], [dom.name, "virtnbdbackup.2", 3, 2, ["vda.full.data"]]);
    assert.deepEqual(result!.images, [{ disk: "vda", virtualSize: 32 * MiB }]);

    // An archived chain beside it (a copy, mtimes kept): a drill without a domain covers it too.
    const archive = `${dom.name}.2026-01-01+00:00:00.0000000000`;
    await execa("cp", ["-a", "--", chain, join(h.backupRoot, archive)], { timeout: 60_000 });

    // One byte flipped in the middle of the second incremental's data file.
    const victim = join(chain, "vda.inc.virtnbdbackup.2.data");
    const { size } = await stat(victim);
    const fd = await open(victim, "r+");
    try {
      const byte = Buffer.alloc(1);
      await fd.read(byte, 0, 1, Math.floor(size / 2));
      byte[0] = byte[0]! ^ 0xff;
      await fd.write(byte, 0, 1, Math.floor(size / 2));
    } finally {
      await fd.close();
    }
    const broken = await drill(JSON.stringify({ requestId: "broken" }), "broken");
    assert.equal(broken.type, "failed", JSON.stringify(broken));
    assert.deepEqual(broken.failure && [broken.failure.domain, broken.failure.set, broken.failure.checkpoint, broken.failure.file], [dom.name, dom.name, "virtnbdbackup.2", "vda.inc.virtnbdbackup.2.data"]);
    assert.match(broken.reason ?? "", /virtnbdbackup\.2: vda\.inc\.virtnbdbackup\.2\.data does not match its recorded sha256/);
    assert.deepEqual(broken.chains?.map((c) => [c.set, c.ok]), [[dom.name, false], [archive, true]], "the active chain fails, its intact archive passes");
    const scratch = join(h.backupRoot, ".vmbs-drill");
    assert.deepEqual(await readdir(scratch), [], "drills restored inside the backup root, and the scratch space of every run is gone");
  });
});

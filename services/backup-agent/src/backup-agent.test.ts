import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { createAgentHarness, imageDigest, restoreChain, waitFor, type AgentHarness } from "@vmbs/lab";
import type { BackupEvent } from "@vmbs/contracts";

const MiB = 1024 * 1024;
const byRequest = (requestId: string, type?: BackupEvent["type"]) => (e: BackupEvent) =>
  e.requestId === requestId && (type ? e.type === type : e.type !== "started");

describe("backup agent: live backups through NATS", () => {
  let h: AgentHarness;
  before(async () => {
    h = await createAgentHarness("labhost");
    await h.startAgent();
  });
  after(async () => h?.close());

  it("backs up a running domain with spaces in its name, full then incremental, restorable bit for bit", async () => {
    const dom = await h.lab.createDomain({ name: `${h.lab.domainPrefix}${Date.now().toString(16)} win 11 ü`, sizeMiB: 96 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0xab });

    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "full-1" }));
    const full = await h.waitEvent(byRequest("full-1"));
    assert.equal(full.type, "completed", JSON.stringify(full));
    assert.equal(full.level, "full");
    assert.equal(full.type === "completed" && full.checkpoint, "virtnbdbackup.0");
    const started = h.events.find(byRequest("full-1", "started"));
    assert.ok(started && started.runId === full.runId, "a started event with the same runId came first");
    assert.ok(full.type === "completed" && full.bytesWritten >= 4 * MiB && full.durationMs > 0);

    await h.lab.writeGuest(dom.name, { offset: 8 * MiB, length: 4 * MiB, pattern: 0xcd });
    await h.lab.writeGuest(dom.name, { offset: 40 * MiB, length: 2 * MiB, pattern: 0x5e });
    h.publishRaw(JSON.stringify({ domain: dom.name, level: "auto", requestId: "inc-1" }));
    const inc = await h.waitEvent(byRequest("inc-1"));
    assert.equal(inc.type, "completed", JSON.stringify(inc));
    assert.equal(inc.level, "inc");
    assert.equal(inc.type === "completed" && inc.checkpoint, "virtnbdbackup.1");

    const folder = join(h.backupRoot, dom.name);
    const incFile = await stat(join(folder, "vda.inc.virtnbdbackup.1.data"));
    const written = 6 * MiB;
    assert.ok(incFile.size >= written && incFile.size <= written * 1.01, `inc data file is ${incFile.size} bytes for ${written} written`);
    assert.equal(inc.type === "completed" && inc.bytesWritten, incFile.size);

    const restored = await restoreChain(folder, await h.lab.tempDir("restore-"));
    assert.equal(await imageDigest(restored), await h.lab.diskDigest(dom.name), "restored chain differs from the live disk");
  });

  it("rejects bad commands with a reason, writes nothing outside the backup root, and keeps serving", async () => {
    const bad: [string, string, RegExp][] = [
      ["json", "{not json", /not valid JSON/],
      ["shape", JSON.stringify({ domain: 5 }), /domain/],
      ["unknown key", JSON.stringify({ domain: "x", rm: "-rf" }), /Unrecognized key|unrecognized/i],
      ["level", JSON.stringify({ domain: "x", level: "copy" }), /level must be one of/],
      ["traversal", JSON.stringify({ domain: "../../etc" }), /must not contain '\/'/],
      ["dot-dot", JSON.stringify({ domain: ".." }), /must not be '\.' or '\.\.'/],
      ["10 kB name", JSON.stringify({ domain: "a".repeat(10_000) }), /longer than 200 bytes/],
    ];
    const before = new Set(await readdir(join(h.backupRoot, "..")));
    for (const [, body] of bad) h.publishRaw(body);
    h.publishRaw(JSON.stringify({ domain: "a b; rm -rf /", requestId: "slash" }));
    h.publishRaw(JSON.stringify({ domain: "a b; rm -rf ~", requestId: "shell" }));
    h.publishRaw(JSON.stringify({ domain: "no-such-domain", requestId: "unknown" }));

    const slash = await h.waitEvent(byRequest("slash"));
    assert.match(slash.type === "failed" ? slash.reason : "", /must not contain '\/'/, "the caller's requestId survives a rejected payload");
    const shell = await h.waitEvent(byRequest("shell"));
    assert.equal(shell.type, "failed");
    assert.match(shell.type === "failed" ? shell.reason : "", /unknown domain/);
    const unknown = await h.waitEvent(byRequest("unknown"));
    assert.match(unknown.type === "failed" ? unknown.reason : "", /unknown domain.*no-such-domain/);
    const rejected = () => h.events.flatMap((e) => (e.type === "failed" && e.domain === undefined ? [e.reason] : []));
    await waitFor(() => rejected().length >= bad.length, { what: "a failed event per bad command" });
    for (const [name, , reason] of bad) assert.ok(rejected().some((r) => reason.test(r)), `${name}: no reason matches ${reason} in ${JSON.stringify(rejected())}`);
    assert.deepEqual(new Set(await readdir(join(h.backupRoot, ".."))), before, "something was created beside the backup root");
    const inRoot = await readdir(h.backupRoot);
    assert.ok(!inRoot.some((n) => n.includes("etc") || n.includes("rm -rf")), `unexpected folders: ${inRoot.join(", ")}`);

    const dom = await h.lab.createDomain();
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "after-bad" }));
    const ok = await h.waitEvent(byRequest("after-bad"));
    assert.equal(ok.type, "completed", JSON.stringify(ok));
  });

  it("reports a domain destroyed mid-run as failed and serves the next command", async () => {
    const dom = await h.lab.createDomain({ sizeMiB: 1024 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 768 * MiB, pattern: 0x11 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "doomed" }));
    await h.waitEvent(byRequest("doomed", "started"));
    await new Promise((r) => setTimeout(r, 700));
    await execa("virsh", ["-c", h.lab.uri, "destroy", "--domain", dom.name]);
    const failed = await h.waitEvent(byRequest("doomed"));
    assert.equal(failed.type, "failed", JSON.stringify(failed));
    assert.ok(failed.type === "failed" && failed.reason.length > 10, "a reason is given");

    const next = await h.lab.createDomain();
    h.publishRaw(JSON.stringify({ domain: next.name, requestId: "next" }));
    assert.equal((await h.waitEvent(byRequest("next"))).type, "completed");
  });

  it("backs up a shut-off domain into a real chain (paused start), never copy or offline inc", async () => {
    const dom = await h.lab.createDomain({ running: false });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 2 * MiB, pattern: 0x21 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "off-full" }));
    const full = await h.waitEvent(byRequest("off-full"));
    assert.equal(full.type, "completed", JSON.stringify(full));
    assert.equal(full.level, "full");
    await h.lab.writeGuest(dom.name, { offset: 16 * MiB, length: 1 * MiB, pattern: 0x22 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "off-inc" }));
    const inc = await h.waitEvent(byRequest("off-inc"));
    assert.equal(inc.type === "completed" && inc.checkpoint, "virtnbdbackup.1", JSON.stringify(inc));
    const state = (await execa("virsh", ["-c", h.lab.uri, "domstate", "--domain", dom.name])).stdout.trim();
    assert.equal(state, "shut off", "the domain is stopped again after its backup");
    const restored = await restoreChain(join(h.backupRoot, dom.name), await h.lab.tempDir("restore-"));
    assert.equal(await imageDigest(restored), await imageDigest(dom.diskPath));
  });
});

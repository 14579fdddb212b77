import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { commandOutcomeKey, publishJson, type CommandRecord } from "@vmbs/bus";
import { streams, subjects, type BackupEvent } from "@vmbs/contracts";
import { createAgentHarness, ignoredListExcept, stopEngineMidTransfer, waitFor, type AgentHarness } from "@vmbs/lab";
import { agentStateDir, type BackupAgentHandle } from "./backup-agent.js";

/* A flood of backup commands for one domain: coalesced into few runs, bounded, and no other domain waits behind it. */

const MiB = 1024 * 1024;
const host = "floodhost";
const flood = 300;

describe("a flood of backup commands for one domain (real lab)", { timeout: 600_000 }, () => {
  let h: AgentHarness;
  let agent: BackupAgentHandle;
  before(async () => {
    h = await createAgentHarness(host);
    agent = await h.startAgent();
  });
  after(async () => h?.close());

  const backup = (body: object, msgId: string) => publishJson(h.nc, subjects.cmd.backup(host), body, msgId);
  const outcomeOf = (requestId: string) => h.events.find((e) => e.requestId === requestId && e.type !== "started");
  const recordOf = async (msgId: string) => {
    const file = join(agentStateDir(h.stateDir, host), "commands", `${commandOutcomeKey(host, `msg-id:${msgId}`)}.json`);
    return JSON.parse(await readFile(file, "utf8")) as CommandRecord;
  };

  it("hundreds of commands for A while its backup runs: at most 2 runs answer all of them, B is not held up", async () => {
    const a = await h.lab.createDomain({ sizeMiB: 512 });
    const b = await h.lab.createDomain({ sizeMiB: 64 });
    await h.lab.writeGuest(a.name, { offset: 0, length: 384 * MiB, pattern: 0x5a });
    await backup({ domain: a.name, level: "auto", requestId: "a-0" }, "a-0");
    // A's first backup is held mid-transfer for as long as the test needs: everything below arrives while it runs.
    const pid = await stopEngineMidTransfer(join(h.backupRoot, a.name), a.name);
    try {
      await h.waitEvent((e) => e.requestId === "a-0" && e.type === "started", 60_000);
      const ids = Array.from({ length: flood }, (_, i) => `a-${i + 1}`);
      for (const id of ids) await backup({ domain: a.name, level: "auto", requestId: id }, id);
      await backup({ domain: b.name, level: "auto", requestId: "b" }, "b");

      const bDone = await h.waitEvent((e) => e.requestId === "b" && e.type !== "started", 120_000);
      assert.equal(bDone.type, "completed", JSON.stringify(bDone));
      assert.equal(outcomeOf("a-0"), undefined, "B completed while A's first backup was still running");
    } finally {
      process.kill(pid, "SIGCONT");
    }

    const all = ["a-0", ...Array.from({ length: flood }, (_, i) => `a-${i + 1}`)];
    await waitFor(() => all.every((id) => outcomeOf(id)), { timeoutMs: 300_000, intervalMs: 500, what: "an outcome for every requestId of A" });
    const outcomes = all.map((id) => outcomeOf(id)!);
    const failedReason = (e: BackupEvent) => (e.type === "failed" ? e.reason : "");
    const refused = outcomes.filter((e) => /refused/.test(failedReason(e)));
    const answered = outcomes.filter((e) => e.type === "completed");
    const isRefused = new Set(refused);
    const isAnswered = new Set<BackupEvent>(answered);
    assert.equal(refused.length + answered.length, all.length, JSON.stringify(outcomes.filter((e) => !isRefused.has(e) && !isAnswered.has(e))));
    assert.ok(refused.length > 0 && answered.length > 2, `${refused.length} refused, ${answered.length} completed`);

    const runs = new Set(h.events.filter((e) => e.domain === a.name && e.type === "started").map((e) => e.runId));
    assert.ok(runs.size <= 2, `A ran ${runs.size} times`);
    assert.equal(new Set(answered.map((e) => e.runId)).size, runs.size, "every answer is the outcome of one of those runs");

    // Every command left the stream: the refused ones too.
    const jsm = await jetstreamManager(h.nc);
    await waitFor(async () => (await jsm.streams.info(streams.commands)).state.messages === 0, { timeoutMs: 30_000, what: "every command acked" });

    // A coalesced command's own record holds its answer, so a redelivery is answered from it.
    const follower = answered.find((e) => e.requestId !== "a-0" && e.runId !== outcomeOf("a-0")!.runId)!;
    const record = await recordOf(follower.requestId!);
    assert.equal(record.state, "done");
    const recorded = record.events.filter((e) => e.subject === subjects.evt.backup(host, "completed")).map((e) => e.payload as BackupEvent);
    assert.deepEqual(recorded.map((e) => [e.requestId, e.runId]), [[follower.requestId, follower.runId]]);
    const refusedRecord = await recordOf(refused[0]!.requestId!);
    assert.equal(refusedRecord.state, "done");
    assert.equal(refusedRecord.disposition, "ack");

    // Past the duplicate window the coalesced command comes again: answered from its record, nothing runs.
    const config = (await jsm.streams.info(streams.commands)).config;
    await jsm.streams.update(streams.commands, { ...config, duplicate_window: 1_000_000_000 });
    try {
      await sleep(1_500);
      const ack = await backup({ domain: a.name, level: "auto", requestId: follower.requestId }, follower.requestId!);
      assert.equal(ack.duplicate, false, "the repeat reached the agent");
      await waitFor(async () => (await jsm.streams.info(streams.commands)).state.messages === 0, { timeoutMs: 30_000, what: "the repeat acked" });
    } finally {
      await jsm.streams.update(streams.commands, config);
    }
    assert.equal(new Set(h.events.filter((e) => e.domain === a.name && e.type === "started").map((e) => e.runId)).size, runs.size, "no new run");
    assert.deepEqual(new Set(h.events.filter((e) => e.requestId === follower.requestId).map((e) => e.runId)), new Set([follower.runId]));
  });

  it("an agent stopped while a run waits for its turn leaves that command to its next start, not run", async () => {
    const c = await h.lab.createDomain({ sizeMiB: 512 });
    await h.lab.writeGuest(c.name, { offset: 0, length: 384 * MiB, pattern: 0x3e });
    await backup({ domain: c.name, level: "auto", requestId: "c-0" }, "c-0");
    await stopEngineMidTransfer(join(h.backupRoot, c.name), c.name);
    await h.waitEvent((e) => e.requestId === "c-0" && e.type === "started", 60_000);
    await backup({ domain: c.name, level: "full", requestId: "c-1" }, "c-1");
    // Its record is written just before it is queued.
    await waitFor(async () => (await recordOf("c-1").catch(() => undefined))?.state === "started", { timeoutMs: 30_000, intervalMs: 5, what: "c-1 taken by the agent" });

    // The stop cancels c-0 (waking its engine); c-1's turn comes after the stop.
    await agent.stop();
    assert.equal(outcomeOf("c-0")?.type, "failed");
    assert.deepEqual(h.events.filter((e) => e.requestId === "c-1"), [], "c-1 did not run");
    const jsm = await jetstreamManager(h.nc);
    assert.equal((await jsm.streams.info(streams.commands)).state.messages, 1, "c-1 is still in the stream");

    // A new agent ignores every domain defined before it started, but c.
    agent = await h.startAgent({ VM_IGNORED_LIST: await ignoredListExcept(h.lab.uri, [c.name]) });
    const next = await h.waitEvent((e) => e.requestId === "c-1" && e.type !== "started", 180_000);
    assert.equal(next.type, "completed", JSON.stringify(next));
  });
});

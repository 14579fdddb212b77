import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { jetstreamManager } from "@nats-io/jetstream";
import { commandOutcomeKey, publishJson, type CommandRecord } from "@vmbs/bus";
import { backupEventSchema, streams, subjects, type BackupEvent } from "@vmbs/contracts";
import { createAgentHarness, waitFor, type AgentHarness } from "@vmbs/lab";
import { agentStateDir } from "./backup-agent.js";

/* Issue 7 point 2: a redelivered command never repeats its work, and events are never lost (real lab, real nats-server). */

const MiB = 1024 * 1024;
const host = "redeliver";

describe("redelivered commands and the event outbox (real lab)", { timeout: 600_000 }, () => {
  let h: AgentHarness;
  before(async () => {
    h = await createAgentHarness(host);
    // A lost ack brings the command back after 30 s instead of the default minute (long enough for test b to see
    // it still pending once its own connection is back).
    await h.startAgent({ VMBS_COMMAND_ACK_WAIT: "30" });
  });
  after(async () => h?.close());

  /** Every backup event stored in VMBS_EVT for this host, with its Nats-Msg-Id. */
  async function storedEvents(): Promise<{ event: BackupEvent; msgId: string | undefined }[]> {
    const jsm = await jetstreamManager(h.nc);
    const { first_seq: first, last_seq: last } = (await jsm.streams.info(streams.events)).state;
    const out: { event: BackupEvent; msgId: string | undefined }[] = [];
    for (let seq = first; seq <= last && last > 0; seq++) {
      const m = await jsm.streams.getMessage(streams.events, { seq });
      if (m && m.subject.startsWith(`vmbs.evt.backup.${host}.`)) out.push({ event: backupEventSchema.parse(m.json()), msgId: m.header.get("Nats-Msg-Id") || undefined });
    }
    return out;
  }
  const storedFor = async (requestId: string, type: BackupEvent["type"]) =>
    (await storedEvents()).filter((s) => s.event.requestId === requestId && s.event.type === type);
  const checkpoints = async (domain: string) =>
    (await execa("virsh", ["-q", "-c", h.lab.uri, "checkpoint-list", "--domain", domain, "--name"])).stdout.split("\n").filter(Boolean);
  const folderFiles = async (domain: string) => (await readdir(join(h.backupRoot, domain))).sort();
  const archivesOf = async (domain: string) => (await readdir(h.backupRoot)).filter((n) => n.startsWith(`${domain}.`));
  const recordOf = async (msgId: string): Promise<CommandRecord | undefined> => {
    const file = join(agentStateDir(h.stateDir, host), "commands", `${commandOutcomeKey(host, `msg-id:${msgId}`)}.json`);
    return readFile(file, "utf8").then((t) => JSON.parse(t) as CommandRecord, () => undefined);
  };
  const pendingCommands = async () => (await (await jetstreamManager(h.nc)).streams.info(streams.commands)).state.messages;
  const backup = (body: object, msgId: string) => publishJson(h.nc, subjects.cmd.backup(host), body, msgId);
  const outcomeOf = (requestId: string) => h.waitEvent((e) => e.requestId === requestId && e.type !== "started", 180_000);

  /** A domain with a one-checkpoint chain and fresh dirty data for an incremental. */
  async function domainWithChain(tag: string) {
    const dom = await h.lab.createDomain({ sizeMiB: 256 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0x31 });
    await backup({ domain: dom.name, level: "full", requestId: `${tag}-first` }, `${tag}-first`);
    assert.equal((await outcomeOf(`${tag}-first`)).type, "completed");
    await h.lab.writeGuest(dom.name, { offset: 16 * MiB, length: 128 * MiB, pattern: 0x32 });
    return dom;
  }

  it("a: nats-server killed during an incremental and back 8 s later: the completed event reaches VMBS_EVT once", async () => {
    const dom = await domainWithChain("a");
    await backup({ domain: dom.name, level: "inc", requestId: "a-inc" }, "a-inc");
    await h.waitEvent((e) => e.requestId === "a-inc" && e.type === "started");
    await h.nats.kill();
    const killedAt = Date.now();
    await sleep(8_000);
    await h.nats.start();
    const done = await outcomeOf("a-inc");
    assert.equal(done.type, "completed", JSON.stringify(done));
    assert.ok(Date.parse(done.at) - killedAt < 60_000);
    await waitFor(async () => (await storedFor("a-inc", "completed")).length > 0, { timeoutMs: 60_000, what: "the completed event in VMBS_EVT" });
    // Let every retry and the command's ack settle, then count again.
    await waitFor(async () => (await pendingCommands()) === 0, { timeoutMs: 120_000, what: "the command acked" });
    await sleep(2_000);
    const stored = await storedFor("a-inc", "completed");
    assert.equal(stored.length, 1, "exactly one completed event is stored");
    assert.equal(stored[0]!.msgId, `${subjects.evt.backup(host, "completed")}#${done.runId}`, "with its deterministic message id");
    assert.equal((await storedFor("a-inc", "started")).length, 1);
    assert.equal((await checkpoints(dom.name)).length, 2, "one incremental, not two");
  });

  it("b: the ack of a finished backup is lost: the redelivery is answered from the record, no second backup", async () => {
    const dom = await domainWithChain("b");
    await backup({ domain: dom.name, level: "auto", requestId: "b-inc" }, "b-inc");
    await h.waitEvent((e) => e.requestId === "b-inc" && e.type === "started");
    // Freeze the server: the completed event, the lease release and the ack all go nowhere...
    process.kill(h.nats.pid(), "SIGSTOP");
    try {
      await waitFor(async () => (await recordOf("b-inc"))?.state === "done", { timeoutMs: 180_000, what: "the outcome recorded" });
      // The ack follows the record's KV copy, which gives up after 3 s: let it be written into the frozen socket.
      await sleep(5_000);
    } finally {
      // ...and die with it: the ack written into the frozen server's socket is lost.
      await h.nats.kill();
    }
    const files = await folderFiles(dom.name);
    const record = await recordOf("b-inc");
    assert.ok(record?.events.some((e) => e.subject === subjects.evt.backup(host, "completed")), "the completed event is in the record");
    await h.nats.start();
    // The first answer once this test's own connection is back (a request fails while it reconnects).
    const { left } = await waitFor(async () => ({ left: await pendingCommands() }), { timeoutMs: 30_000, what: "the test connection back" });
    assert.equal(left, 1, "the ack was lost: the command is still in VMBS_CMD");
    // JetStream redelivers the unacked command; the agent answers it from the record and acks it.
    await waitFor(async () => (await pendingCommands()) === 0, { timeoutMs: 180_000, intervalMs: 500, what: "the redelivered command acked" });
    await waitFor(async () => (await storedFor("b-inc", "completed")).length > 0, { timeoutMs: 60_000, what: "the completed event in VMBS_EVT" });
    await sleep(2_000);
    const completed = await storedFor("b-inc", "completed");
    assert.equal(completed.length, 1, "the completed event is stored exactly once");
    assert.equal((await storedFor("b-inc", "started")).length, 1, "no second run started");
    assert.equal((await checkpoints(dom.name)).length, 2, "checkpoint count unchanged: full + one incremental");
    assert.deepEqual(await folderFiles(dom.name), files, "no new file in the chain");
    assert.deepEqual(await archivesOf(dom.name), [], "no archive");
    assert.equal((await recordOf("b-inc"))?.owner, record?.owner, "the record was not rewritten by a second run");
  });

  it("c: a repeated full (same Nats-Msg-Id, delivered again) does not archive the new chain; older archives untouched", async () => {
    const dom = await domainWithChain("c");
    await backup({ domain: dom.name, level: "full", requestId: "c-full" }, "c-full");
    const full = await outcomeOf("c-full");
    assert.equal(full.type, "completed", JSON.stringify(full));
    const archives = await archivesOf(dom.name);
    assert.equal(archives.length, 1, "the first chain was archived by the full");
    const archiveFiles = await readdir(join(h.backupRoot, archives[0]!));
    const chainFiles = await folderFiles(dom.name);
    const cps = await checkpoints(dom.name);

    // Past the duplicate window the same Nats-Msg-Id is stored again and delivered: a repeat of the command.
    const jsm = await jetstreamManager(h.nc);
    const config = (await jsm.streams.info(streams.commands)).config;
    await jsm.streams.update(streams.commands, { ...config, duplicate_window: 1_000_000_000 });
    try {
      await sleep(1_500);
      const ack = await backup({ domain: dom.name, level: "full", requestId: "c-full" }, "c-full");
      assert.equal(ack.duplicate, false, "the repeat reached the agent");
      await waitFor(async () => (await pendingCommands()) === 0, { timeoutMs: 60_000, what: "the repeat acked" });
    } finally {
      await jsm.streams.update(streams.commands, config);
    }
    assert.deepEqual(await archivesOf(dom.name), archives, "no new archive");
    assert.deepEqual(await readdir(join(h.backupRoot, archives[0]!)), archiveFiles, "the older archive is untouched");
    assert.deepEqual(await folderFiles(dom.name), chainFiles, "the new chain is untouched");
    assert.deepEqual(await checkpoints(dom.name), cps);
    // Core subscribers see the re-announced events again (same runId); the stream stores each once.
    assert.equal(new Set(h.events.filter((e) => e.requestId === "c-full").map((e) => e.runId)).size, 1, "no second run");
    assert.equal((await storedFor("c-full", "started")).length, 1);
    assert.equal((await storedFor("c-full", "completed")).length, 1);
  });
});

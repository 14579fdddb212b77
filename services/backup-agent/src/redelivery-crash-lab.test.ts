import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { CommandRecord } from "@vmbs/bus";
import { backupEventSchema, streams, subjects, type BackupEvent } from "@vmbs/contracts";
import { completed, createChainTestKit, MiB, outcome, sleep, waitFor, type ChainTestKit } from "@vmbs/lab";
import { agentStateDir } from "./backup-agent.js";

/*
 * Issue 7 point 2, with agents that die: a redelivered command after a SIGKILLed agent (child process, with its
 * engine) is answered from its record or resumed without repeating a destructive step.
 */

/** A killed agent's command comes back after 10 s instead of the default minute. */
const quickRedelivery = { VMBS_COMMAND_ACK_WAIT: "10" };

describe("redelivery after a killed agent (real lab, child agents)", { timeout: 600_000 }, () => {
  let k: ChainTestKit;
  before(async () => {
    k = await createChainTestKit();
  });
  afterEach(async () => k.stopAgents());
  after(async () => k?.close());

  const stateDir = (host: string) => agentStateDir(join(k.backupRoot, "..", "state"), host);
  const pendingCommands = async () => (await (await jetstreamManager(k.nc)).streams.info(streams.commands)).state.messages;
  async function stored(host: string, requestId: string, type: BackupEvent["type"]): Promise<BackupEvent[]> {
    const jsm = await jetstreamManager(k.nc);
    const { first_seq: first, last_seq: last } = (await jsm.streams.info(streams.events)).state;
    const out: BackupEvent[] = [];
    for (let seq = first; seq <= last && last > 0; seq++) {
      const m = await jsm.streams.getMessage(streams.events, { seq });
      if (m?.subject !== subjects.evt.backup(host, type)) continue;
      const e = backupEventSchema.parse(m.json());
      if (e.requestId === requestId) out.push(e);
    }
    return out;
  }
  async function recordsOf(host: string): Promise<CommandRecord[]> {
    const dir = join(stateDir(host), "commands");
    return Promise.all((await readdir(dir)).filter((n) => n.endsWith(".json")).map(async (n) => JSON.parse(await readFile(join(dir, n), "utf8")) as CommandRecord));
  }

  it("agent SIGKILLed once its completed event is in the outbox, before the ack: the redelivery runs nothing again", async () => {
    const host = "rdk1";
    const ev = k.events(host);
    const dom = await k.lab.createDomain({ sizeMiB: 256 });
    let agent = await k.agentFor(host, [dom.name], quickRedelivery);
    // The startup check starts the chain: a 256 MiB full under TCG, on a machine busy with the other lane.
    await ev.waitBackup(completed(dom.name), 180_000);
    await k.lab.writeGuest(dom.name, { offset: 16 * MiB, length: 32 * MiB, pattern: 0x41 });

    // A plain core publish: the command is known by stream and sequence.
    k.backup(host, { domain: dom.name, requestId: "rdk-inc" });
    await ev.waitBackup((e) => e.requestId === "rdk-inc" && e.type === "started", 60_000);
    // Frozen NATS: the agent can announce nothing and ack nothing; the completed event waits in its outbox.
    process.kill(k.nats.pid(), "SIGSTOP");
    try {
      const outboxFile = join(stateDir(host), "outbox.jsonl");
      await waitFor(
        async () => (await readFile(outboxFile, "utf8")).split("\n").some((l) => l.includes(subjects.evt.backup(host, "completed")) && l.includes("rdk-inc")),
        { timeoutMs: 120_000, intervalMs: 20, what: "the completed event in the outbox" },
      );
      await agent.kill9();
    } finally {
      process.kill(k.nats.pid(), "SIGCONT");
    }
    const folder = join(k.backupRoot, dom.name);
    const files = (await readdir(folder)).sort();
    assert.deepEqual(await k.checkpoints(dom.name), ["virtnbdbackup.0", "virtnbdbackup.1"]);
    const interrupted = (await recordsOf(host)).find((r) => r.events.some((e) => JSON.stringify(e.payload).includes("rdk-inc")));
    assert.equal(interrupted?.state, "started", "the run was recorded as started, never done");

    agent = await k.agentFor(host, [dom.name], quickRedelivery);
    // JetStream redelivers the command after its ack wait; the new agent answers and acks it.
    await waitFor(async () => (await pendingCommands()) === 0, { timeoutMs: 180_000, intervalMs: 500, what: "the redelivered command acked" });
    await waitFor(async () => (await stored(host, "rdk-inc", "completed")).length > 0, { timeoutMs: 30_000, what: "the completed event stored" });
    await sleep(2_000);
    assert.equal((await stored(host, "rdk-inc", "completed")).length, 1, "the completed event is stored once");
    assert.equal((await stored(host, "rdk-inc", "started")).length, 1, "no second run");
    const chainSteps = () => JSON.stringify(ev.chain.filter((e) => e.domain === dom.name).map((e) => [e.type, e.trigger, e.plan, e.step, e.reason]));
    assert.deepEqual(await k.checkpoints(dom.name), ["virtnbdbackup.0", "virtnbdbackup.1"], `checkpoint count unchanged; chain events: ${chainSteps()}`);
    assert.deepEqual((await readdir(folder)).sort(), files, "no new file in the chain");
    assert.deepEqual(await k.archivesOf(dom.name), [], "no archive");
    const done = (await recordsOf(host)).find((r) => r.identity === interrupted?.identity);
    assert.equal(done?.state, "done");
    assert.notEqual(done?.owner, interrupted?.owner, "answered by the new agent");
    await agent.stop();
  });

  it("a full killed after it archived the chain: the redelivery continues as auto and never archives the new chain", async () => {
    const host = "rdk2";
    const ev = k.events(host);
    const dom = await k.lab.createDomain({ sizeMiB: 256 });
    await k.lab.writeGuest(dom.name, { offset: 0, length: 16 * MiB, pattern: 0x50 });
    let agent = await k.agentFor(host, [dom.name], quickRedelivery);
    await ev.waitBackup(completed(dom.name), 60_000);
    await k.lab.writeGuest(dom.name, { offset: 32 * MiB, length: 64 * MiB, pattern: 0x51 });

    const frozen = agent.freezeEngineWhen(dom.name, async () => (await k.partialIn(join(k.backupRoot, dom.name))).length > 0);
    k.backup(host, { domain: dom.name, level: "full", requestId: "rdk-full" });
    await frozen;
    await ev.waitBackup((e) => e.requestId === "rdk-full" && e.type === "started", 60_000);
    const [archive] = await k.archivesOf(dom.name);
    assert.ok(archive, "the full archived the previous chain");
    const archived = await k.hashTree(join(k.backupRoot, archive));
    await agent.kill9();

    // The restarted agent repairs the interrupted chain at start-up (a new full), then gets the command again.
    agent = await k.agentFor(host, [dom.name], quickRedelivery);
    const redone = await ev.waitBackup(outcome("rdk-full"), 240_000);
    await waitFor(async () => (await pendingCommands()) === 0, { timeoutMs: 180_000, intervalMs: 500, what: "the redelivered command acked" });
    const outcomes = await stored(host, "rdk-full", "completed");
    assert.equal(outcomes.length, 1, JSON.stringify(outcomes));
    const resumed = outcomes[0]!;
    assert.equal(resumed.type === "completed" && resumed.archivedTo, undefined, `the resumed run archived nothing: ${JSON.stringify(redone)}`);
    assert.deepEqual(await k.archivesOf(dom.name), [archive], "still the one archive the interrupted full made");
    assert.deepEqual(await k.hashTree(join(k.backupRoot, archive)), archived, "the archived chain is byte-for-byte untouched");
    assert.equal((await k.checkpoints(dom.name)).length, (resumed.type === "completed" && resumed.checkpoint === "virtnbdbackup.1") ? 2 : 1);
    assert.match(await readFile(join(k.backupRoot, "..", `agent-${host}.log`), "utf8"), /resuming an interrupted backup command/);
    await agent.stop();
  });
});

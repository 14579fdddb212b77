import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { authFileNames, connectBus, createChainLeases, publishJson, type NatsConnection } from "@vmbs/bus";
import { backupRootId } from "@vmbs/chain";
import { backupCompletedSchema, roleId, roleInboxPrefix, streams, subjects, type BackupCompleted, type BusRole } from "@vmbs/contracts";
import {
  createLab,
  ignoredListExcept,
  MiB,
  recordEvents,
  startChildAgent,
  startTestNatsCluster,
  waitFor,
  type ChildAgent,
  type EventLog,
  type Lab,
  type LabDomain,
  type TestNatsCluster,
} from "@vmbs/lab";

/*
 * Issue 16 item 6: the bus on a 3-node JetStream cluster with VMBS_STREAM_REPLICAS=3, set up and used as a fleet
 * does (`vmbs auth init` credentials, `vmbs bus setup`, `vmbs agent` with NATS_URL naming all three nodes). The
 * node leading VMBS_EVT is SIGKILLed while an incremental runs; nothing of the backup may notice.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "clustered";

describe("a 3-node NATS cluster loses the leader of VMBS_EVT during an incremental (real lab)", { timeout: 240_000 }, () => {
  let lab: Lab;
  let cluster: TestNatsCluster;
  let nc: NatsConnection;
  let agent: ChildAgent | undefined;
  let events: EventLog;
  let env: Record<string, string>;
  let authDir: string;
  const seedOf = (role: BusRole) => join(authDir, authFileNames.seed(roleId(role)));

  before(async () => {
    lab = await createLab();
    authDir = join(await lab.tempDir("auth-"), "auth");
    const state = await lab.tempDir("state-");
    env = {
      NATS_URL: "",
      HOST_ID: host,
      VMBS_STREAM_REPLICAS: "3",
      LOCAL_BACKUP_PATH: await lab.tempDir("backups-"),
      VMBS_STATE_DIR: state,
      LOGFILE_PATH: join(state, "vmbs.log"),
    };
    await execa("node", [vmbs, "auth", "init", "--hosts", host, "--out", authDir], { env, timeout: 30_000 });
    cluster = await startTestNatsCluster({ configFile: join(authDir, authFileNames.serverConfig) });
    env.NATS_URL = cluster.url;
    // The operator's set-up, as for a fleet: streams, buckets and this host's durables, each with 3 replicas.
    const setup = await execa("node", [vmbs, "bus", "setup", "--hosts", host], { env: { ...env, NATS_NKEY_SEED: seedOf({ kind: "operator" }) }, timeout: 60_000 });
    assert.match(setup.stdout, /streams and buckets ready/);
    const operatorSeed = await readFile(seedOf({ kind: "operator" }), "utf8");
    nc = await connectBus(cluster.url, "cluster-test", { nkeySeed: operatorSeed, inboxPrefix: roleInboxPrefix({ kind: "operator" }) });
    events = recordEvents(nc, host);
  });
  after(async () => {
    await agent?.stop();
    events?.stop();
    await nc?.close();
    await cluster?.stop();
    await lab?.cleanup();
  });

  const jsm = async () => jetstreamManager(nc);
  /** This host's completed events as VMBS_EVT stores them (live delivery may miss one while a node dies). */
  async function storedCompleted(): Promise<BackupCompleted[]> {
    const reader = await jetstream(nc).consumers.get(streams.events, { filter_subjects: subjects.evt.backup(host, "completed") });
    const stored: BackupCompleted[] = [];
    for (let m = await reader.next({ expires: 2_000 }); m; m = m.info.pending > 0 ? await reader.next({ expires: 2_000 }) : null)
      stored.push(backupCompletedSchema.parse(m.json()));
    return stored;
  }
  const completedOf = (requestId: string) =>
    waitFor(async () => (await storedCompleted()).find((e) => e.requestId === requestId), { timeoutMs: 120_000, intervalMs: 500, what: `${requestId} completed in VMBS_EVT` });
  const backup = (domain: LabDomain, level: string, requestId: string) => publishJson(nc, subjects.cmd.backup(host), { domain: domain.name, level, requestId }, requestId);
  const checkpointIndex = (e: BackupCompleted) => Number(/\.(\d+)$/.exec(e.checkpoint)?.[1]);

  it("the backup completes, its event is stored once, the next incremental continues the chain, leases work", async () => {
    for (const name of [streams.events, streams.commands]) assert.equal((await (await jsm()).streams.info(name)).config.num_replicas, 3, name);
    const dom = await lab.createDomain({ sizeMiB: 512 });
    agent = startChildAgent({
      ...env,
      NATS_NKEY_SEED: seedOf({ kind: "agent", host }),
      VM_IGNORED_LIST: await ignoredListExcept(lab.uri, [dom.name]),
      VM_ALLOWED_LIST: lab.allowedList,
    });
    await lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0x41 });
    await backup(dom, "full", "full-1");
    const full = await completedOf("full-1");

    // Enough dirty data that the incremental takes seconds: the kill lands in the middle of it.
    await lab.writeGuest(dom.name, { offset: 8 * MiB, length: 384 * MiB, pattern: 0x42 });
    await backup(dom, "inc", "inc-1");
    await events.waitBackup((e) => e.requestId === "inc-1" && e.type === "started", 60_000);
    const leader = (await (await jsm()).streams.info(streams.events)).cluster?.leader;
    assert.ok(leader, "VMBS_EVT has a leader");
    await cluster.node(leader).kill();
    const killedAt = Date.now();

    const inc = await completedOf("inc-1");
    assert.ok(Date.parse(inc.at) > killedAt, "the incremental was still running when the leader died");
    assert.equal(inc.level, "inc");
    assert.equal(checkpointIndex(inc), checkpointIndex(full) + 1);
    // Right after a leader's death an API request may time out while the cluster settles: asked again.
    const newLeader = await waitFor(async () => (await (await jsm()).streams.info(streams.events)).cluster?.leader, { timeoutMs: 60_000, what: "VMBS_EVT's leader" });
    assert.ok(newLeader && newLeader !== leader, `another node leads VMBS_EVT (was ${leader}, now ${newLeader})`);
    // Every retry of the agent's outbox has had its time: still one completed event for the run.
    await waitFor(async () => (await (await jsm()).streams.info(streams.commands)).state.messages === 0, { timeoutMs: 60_000, what: "the command acked" });
    await sleep(2_000);
    const runs = await waitFor(async () => (await storedCompleted()).filter((e) => e.runId === inc.runId), { timeoutMs: 60_000, what: "the stored events" });
    assert.equal(runs.length, 1, "the completed event is stored exactly once");

    await lab.writeGuest(dom.name, { offset: 400 * MiB, length: 4 * MiB, pattern: 0x43 });
    await backup(dom, "inc", "inc-2");
    const next = await completedOf("inc-2");
    assert.equal(next.level, "inc");
    assert.equal(checkpointIndex(next), checkpointIndex(inc) + 1, "the chain goes on");

    const leases = await createChainLeases(nc, { holder: "cluster-test" });
    const lease = await leases.acquire(await backupRootId(env.LOCAL_BACKUP_PATH!, host), dom.name, { waitMs: 10_000 });
    await lease.release();
  });
});

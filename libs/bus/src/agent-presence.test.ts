import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { buckets } from "@vmbs/contracts";
import { connectBus, type NatsConnection } from "./connect-bus.js";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { AgentPresenceBusyError, claimAgentPresence, mayTakeOver, readMachineIdentity, type MachineIdentity, type PresenceRecord } from "./agent-presence.js";

const me: MachineIdentity = { hostname: "tower", machineId: "m1", bootId: "b1" };
const record = (over: Partial<PresenceRecord>): PresenceRecord => ({ host: "tower", ...me, pid: 100, since: "2026-01-01T00:00:00Z", ...over });

describe("mayTakeOver (pure)", () => {
  const rows: [string, PresenceRecord | undefined, boolean, boolean][] = [
    ["a crashed agent of this machine and boot", record({}), false, true],
    ["a live agent of this machine", record({}), true, false],
    ["an agent of another machine with the same hostname (Unraid's Tower)", record({ machineId: "m2" }), false, false],
    ["an agent of this machine before a reboot (its pid means nothing now, but it may be another box)", record({ bootId: "b0" }), false, false],
    ["a container with another hostname on this machine", record({ hostname: "c0ffee" }), false, false],
    ["an unreadable record", undefined, false, false],
    ["a record without a boot id", record({ bootId: "" }), false, false],
    ["an earlier run with our own pid (a restarted container)", record({ pid: 1 }), true, true],
    ["our own pid, recorded by another machine", record({ pid: 1, machineId: "m2" }), true, false],
  ];
  for (const [name, holder, alive, expected] of rows)
    it(`${name}: ${expected ? "take over" : "refuse"}`, () => {
      const identity = holder?.bootId === "" ? { ...me, bootId: "" } : me;
      assert.equal(mayTakeOver(holder, { ...identity, pid: 1 }, () => alive), expected);
    });
});

describe("agent presence on a real nats-server", () => {
  let server: RunningNatsServer;
  let storeDir: string;
  let nc: NatsConnection;
  before(async () => {
    storeDir = await mkdtemp(join(tmpdir(), "vmbs-presence-store-"));
    server = await startNatsServer({ storeDir });
    nc = await connectBus(server.url, "presence-test");
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
    await rm(storeDir, { recursive: true, force: true });
  });
  const bucket = (tag: string) => `${buckets.agentPresence}_${tag}`;

  it("refuses a second agent for the same host id, naming the first; a new one starts after the first stops", async () => {
    const first = await claimAgentPresence(nc, { host: "tower", bucket: bucket("two") });
    const other: MachineIdentity = { hostname: "tower", machineId: "other-box", bootId: "x" };
    const err = await claimAgentPresence(nc, { host: "tower", bucket: bucket("two"), identity: other, pid: 4242 }).then(
      () => assert.fail("the second agent must be refused"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AgentPresenceBusyError);
    assert.equal(err.holder?.pid, process.pid);
    assert.equal(err.holder?.machineId, (await readMachineIdentity()).machineId);
    assert.match(err.message, new RegExp(`pid ${process.pid}, running since `));
    // Other host ids are independent.
    const web = await claimAgentPresence(nc, { host: "web", bucket: bucket("two"), identity: other });
    await web.lease.release();
    await first.lease.release();
    const next = await claimAgentPresence(nc, { host: "tower", bucket: bucket("two"), identity: other, pid: 4242 });
    assert.equal((await next.holder())?.machineId, "other-box");
    await next.lease.release();
  });

  it("a restart on the same machine takes over from its crashed predecessor at once, not after the TTL", async () => {
    // A pid that surely is gone: a child that has exited.
    const deadPid = spawnSync("true").pid;
    const crashed = await claimAgentPresence(nc, { host: "tower", bucket: bucket("crash"), ttlMs: 60_000, pid: deadPid });
    crashed.lease.abandon();
    const started = Date.now();
    const restarted = await claimAgentPresence(nc, { host: "tower", bucket: bucket("crash") });
    assert.ok(Date.now() - started < 5_000);
    assert.equal((await restarted.holder())?.pid, process.pid);
    // The same dead pid recorded by another machine is not ours to judge: refused until its key expires.
    const foreign = await claimAgentPresence(nc, { host: "nas", bucket: bucket("crash"), pid: deadPid, identity: { ...(await readMachineIdentity()), machineId: "elsewhere" } });
    foreign.lease.abandon();
    await assert.rejects(claimAgentPresence(nc, { host: "nas", bucket: bucket("crash") }), AgentPresenceBusyError);
    await restarted.lease.release();
  });

  it("a key taken by another agent ends the presence; a key that merely expired (NATS outage, stall) is re-created", async () => {
    const held = await claimAgentPresence(nc, { host: "tower", bucket: bucket("loss"), ttlMs: 1500 });
    const kv = await new Kvm(nc).open(bucket("loss"));
    // Stall past the TTL: the server expires the key, and the next renewal finds it free.
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      /* busy wait on purpose */
    }
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(held.lease.signal.aborted, false, "an expiry alone must not end the presence");
    assert.equal((await kv.get("tower"))?.operation, "PUT", "the key is back");

    await kv.put("tower", JSON.stringify(record({ hostname: "intruder", pid: 7 })));
    const lost = await held.lease.lost;
    assert.match(lost.message, /agent presence tower lost: another holder took the key/);
    assert.equal((await held.holder())?.hostname, "intruder");
    await held.lease.release();
    assert.equal((await kv.get("tower"))?.operation, "PUT", "a lost holder deletes nothing");
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import type { ServiceInfo } from "@nats-io/services";
import { isPermissionViolation, openBucket, publishJson, readBucket, type NatsConnection } from "@vmbs/bus";
import { buckets, eventMessageId, fleetStatusSchema, statusServiceName, streams, subjects, type FleetStatus } from "@vmbs/contracts";
import { startRoleBus, testLogger, waitFor, type RoleBus } from "@vmbs/lab";
import { startStatusService, type StatusService } from "./status-service.js";
import { type FleetPolicy, uniformFleetPolicy } from "./fleet-policy.js";

// A real nats-server with the authorization config `vmbs auth init` writes: the status service connects as the
// status role, agents as their own.
describe("status service on a real nats-server with the generated roles", () => {
  let bus: RoleBus;
  let operator: NatsConnection;
  let agent1: NatsConnection;
  let agent2: NatsConnection;
  let statusNc: NatsConnection;
  let service: StatusService | undefined;
  // Short clocks: a host is silent 3 s after its last heartbeat, a domain overdue 4 s after its last good backup.
  const policy: FleetPolicy = uniformFleetPolicy({ rpoSeconds: 4, silentAfterMs: 3_000, nextRun: () => null });
  const start = async (): Promise<StatusService> => (service = await startStatusService({ nc: statusNc, policy, logger: testLogger("status"), pollMs: 200, listen: null }));

  const ask = async (body: unknown = {}): Promise<FleetStatus> =>
    fleetStatusSchema.parse((await operator.request(subjects.svc.statusEndpoint("fleet"), JSON.stringify(body), { timeout: 5_000 })).json());
  /** The fleet alarms stored in VMBS_EVT, by subject. */
  const storedAlarms = async (): Promise<Record<string, number>> => {
    const info = await (await jetstreamManager(operator)).streams.info(streams.events, { subjects_filter: "vmbs.evt.fleet.>" });
    return info.state.subjects ?? {};
  };

  before(async () => {
    bus = await startRoleBus(["hv1", "hv2"]);
    operator = bus.operator;
    [agent1, agent2, statusNc] = await Promise.all([bus.connect({ kind: "agent", host: "hv1" }), bus.connect({ kind: "agent", host: "hv2" }), bus.connect({ kind: "status" })]);
  });
  after(async () => {
    await service?.stop();
    await bus?.stop();
  });

  it("answers with both hosts, their domains and last backups, as the reply contract says", async () => {
    await bus.beat(agent1, "hv1", [{ name: "web", state: "running", scheduled: true }]);
    await bus.beat(agent2, "hv2", [{ name: "db", state: "shut off", scheduled: true }]);
    const at = new Date().toISOString();
    await publishJson(agent1, subjects.evt.backup("hv1", "completed"), { type: "completed", host: "hv1", domain: "web", runId: "r1", level: "full", checkpoint: "virtnbdbackup.0", bytesWritten: 4096, durationMs: 1500, folder: "web", at });
    await start();
    await waitFor(
      async () => {
        const { hosts } = await ask();
        return hosts.length === 2 && Boolean(hosts.find((h) => h.host === "hv1")?.domains[0]?.lastBackup);
      },
      { timeoutMs: 10_000, what: "both heartbeats and the backup in the status" },
    );
    const s = await ask();
    assert.deepEqual(s.hosts.map((h) => [h.host, h.alive, h.versions]), [["hv1", true, { vmbs: "0.1.0", virtnbdbackup: "2.18" }], ["hv2", true, { vmbs: "0.1.0", virtnbdbackup: "2.18" }]]);
    const web = s.hosts[0]!.domains[0]!;
    assert.deepEqual([web.domain, web.state, web.scheduled, web.chainLength, web.lastBackup?.bytesWritten], ["web", "running", true, 1, 4096]);
    assert.deepEqual((await ask({ host: "hv2" })).hosts.map((h) => h.domains.map((d) => d.domain)), [["db"]]);
    // The history endpoint and refusals with a reason.
    const history = (await operator.request(subjects.svc.statusEndpoint("history"), JSON.stringify({ host: "hv1", domain: "web" }), { timeout: 5_000 })).json<{ runs: unknown[] }>();
    assert.equal(history.runs.length, 1);
    const bad = await operator.request(subjects.svc.statusEndpoint("fleet"), "{not json", { timeout: 5_000 });
    assert.equal(bad.headers?.get("Nats-Service-Error-Code"), "400");
    const badHost = await operator.request(subjects.svc.statusEndpoint("fleet"), JSON.stringify({ host: "../x" }), { timeout: 5_000 });
    assert.equal(badHost.headers?.get("Nats-Service-Error-Code"), "400");
  });

  it("$SRV.INFO names each endpoint's request and reply schema files, which are checked in", async () => {
    const info = (await operator.request(`$SRV.INFO.${statusServiceName}`, "", { timeout: 5_000 })).json<ServiceInfo>();
    const schemaFiles = await readdir(new URL("../../../schemas/", import.meta.url));
    assert.deepEqual(
      info.endpoints.map((e) => [e.subject, e.metadata]).sort(),
      [
        ["vmbs.svc.status.fleet", { request_schema: "svc.status.fleet.request.schema.json", response_schema: "svc.status.fleet.reply.schema.json" }],
        ["vmbs.svc.status.history", { request_schema: "svc.status.history.request.schema.json", response_schema: "svc.status.history.reply.schema.json" }],
      ],
    );
    for (const e of info.endpoints) for (const file of Object.values(e.metadata ?? {})) assert.ok(schemaFiles.includes(file), `${file} is in schemas/`);
  });

  it("a host that stops heart-beating: exactly one silent event, then one back when it returns", async () => {
    // hv1 keeps beating (and keeps getting backups, so it raises nothing); hv2 stops.
    const keepAlive = setInterval(() => void bus.beat(agent1, "hv1", [{ name: "web", state: "running", scheduled: false }]).catch(() => undefined), 500);
    try {
      await waitFor(async () => (await storedAlarms())["vmbs.evt.fleet.hv2.silent"] === 1, { timeoutMs: 15_000, what: "hv2's silent alarm" });
      assert.equal((await ask({ host: "hv2" })).hosts[0]!.alive, false);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal((await storedAlarms())["vmbs.evt.fleet.hv2.silent"], 1, "raised once");
      await bus.beat(agent2, "hv2", [{ name: "db", state: "shut off", scheduled: false }]);
      await waitFor(async () => (await storedAlarms())["vmbs.evt.fleet.hv2.back"] === 1, { timeoutMs: 10_000, what: "hv2's back event" });
    } finally {
      clearInterval(keepAlive);
    }
  });

  it("a scheduled domain past its RPO: exactly one stale event per episode, also across a restart of the service", async () => {
    const keepAlive = setInterval(() => void bus.beat(agent1, "hv1", [{ name: "web", state: "running", scheduled: true }]).catch(() => undefined), 500);
    try {
      await waitFor(async () => (await storedAlarms())["vmbs.evt.fleet.hv1.stale"] === 1, { timeoutMs: 15_000, what: "web's stale alarm" });
      const web = (await ask({ host: "hv1", domain: "web" })).hosts[0]!.domains[0]!;
      assert.equal(web.rpo.breached, true);
      assert.ok(web.attention.some((a) => a.startsWith("no good backup for")), web.attention.join("; "));
      // A restart rebuilds the model from the bucket: the backup is still known and the alarm is not raised again.
      await service!.stop();
      await start();
      assert.equal((await ask({ host: "hv1", domain: "web" })).hosts[0]!.domains[0]!.lastBackup?.checkpoint, "virtnbdbackup.0");
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal((await storedAlarms())["vmbs.evt.fleet.hv1.stale"], 1, "one stale event for the episode");
    } finally {
      clearInterval(keepAlive);
    }
  });

  it("roles stay in their lane: an agent cannot raise fleet alarms or write the status bucket; the status role cannot publish backups", async () => {
    await assert.rejects(publishJson(agent1, subjects.evt.fleet("hv2", "silent"), { type: "silent" }), (err) => isPermissionViolation(err));
    const { kv } = await openBucket(agent1, buckets.status);
    await assert.rejects(kv.put("host.hv2", "{}"), (err) => isPermissionViolation(err));
    await assert.rejects(publishJson(statusNc, subjects.evt.backup("hv1", "completed"), {}), (err) => isPermissionViolation(err));
  });

  it("a host entry is trusted for its key only: what hv1's agent stores under its own key naming hv3 makes no host hv3", async () => {
    const { kv } = await openBucket(agent1, buckets.hosts);
    await kv.put("hv1", JSON.stringify({ host: "hv3", hostname: "hv3", agentVersion: "0.1.0", heartbeatAt: new Date().toISOString(), domains: [{ name: "ghost", state: "running", scheduled: true }] }));
    await new Promise((r) => setTimeout(r, 1_000)); // several polls
    const s = await ask();
    assert.deepEqual(s.hosts.map((h) => h.host), ["hv1", "hv2"]);
    assert.ok(!s.hosts.some((h) => h.domains.some((d) => d.domain === "ghost")));
  });

  it("another host's agent cannot hide a host's silent alarm by taking its message id first", async () => {
    // VMBS_EVT drops a message whose Nats-Msg-Id it saw within its duplicate window, whatever its subject, and any
    // role may set that header on its own events: an id computable from what hv1's agent reads (hv2's heartbeat)
    // would let it use the id of hv2's next silent alarm first, and the alarm would be dropped.
    const subject = subjects.evt.fleet("hv2", "silent");
    await bus.beat(agent2, "hv2", [{ name: "db", state: "shut off", scheduled: false }]);
    await waitFor(async () => (await ask({ host: "hv2" })).hosts[0]?.alive === true, { timeoutMs: 5_000, what: "hv2 alive" });
    const before = (await storedAlarms())[subject] ?? 0;
    const entry = (await readBucket(agent1, buckets.hosts)).find((e) => e.key === "hv2");
    assert.ok(entry, "hv1's agent reads hv2's heartbeat");
    const { heartbeatAt } = JSON.parse(new TextDecoder().decode(entry.value)) as { heartbeatAt: string };
    const ack = await publishJson(agent1, subjects.evt.backup("hv1", "started"), { type: "started", host: "hv1", domain: "web", runId: "r-poison", level: "full", requestedLevel: "auto", at: new Date().toISOString() }, eventMessageId(subject, createHash("sha256").update(heartbeatAt).digest("hex").slice(0, 32)));
    assert.equal(ack.duplicate, false);
    await waitFor(async () => ((await storedAlarms())[subject] ?? 0) === before + 1, { timeoutMs: 15_000, what: "hv2's silent alarm stored" });
  });
});

// `vmbs start` starts the status service before the agent: the agent's first heartbeat must show at once, not at
// the next alarm decision (every 10 s), or the fresh host reads "host never heart-beat" for up to 10 s.
describe("status service: an agent that starts after it", () => {
  let bus: RoleBus;
  let service: StatusService | undefined;
  after(async () => {
    await service?.stop();
    await bus?.stop();
  });

  it("shows the agent's first heartbeat within a second, with the alarm decisions still 10 s apart", async () => {
    bus = await startRoleBus(["hv1"]);
    const [agent, statusNc] = await Promise.all([bus.connect({ kind: "agent", host: "hv1" }), bus.connect({ kind: "status" })]);
    const policy: FleetPolicy = uniformFleetPolicy({ rpoSeconds: 3600, silentAfterMs: 65_000, nextRun: () => null });
    service = await startStatusService({ nc: statusNc, policy, logger: testLogger("status"), pollMs: 10_000, listen: null });
    const ask = async (): Promise<FleetStatus> => fleetStatusSchema.parse((await bus.operator.request(subjects.svc.statusEndpoint("fleet"), "{}", { timeout: 5_000 })).json());
    // The agent's start-up publishes an event before its first heartbeat is read: the host is known, never heart-beat.
    await publishJson(agent, subjects.evt.backup("hv1", "started"), { type: "started", host: "hv1", domain: "web", runId: "r1", level: "full", requestedLevel: "auto", at: new Date().toISOString() });
    await waitFor(async () => (await ask()).hosts[0]?.domains[0]?.attention.includes("host never heart-beat") === true, { timeoutMs: 5_000, what: "hv1 known from its event only" });
    // Past the service's first read: the 10 s alarm poll would not read again for ~9 s.
    await new Promise((r) => setTimeout(r, 500));
    const beaten = Date.now();
    await bus.beat(agent, "hv1", [{ name: "web", state: "running", scheduled: true }]);
    await waitFor(async () => (await ask()).hosts[0]?.alive === true, { timeoutMs: 5_000, what: "hv1 alive" });
    const seenAfterMs = Date.now() - beaten;
    assert.ok(seenAfterMs < 1_500, `seen alive ${seenAfterMs} ms after its first heartbeat`);
    const hv1 = (await ask()).hosts[0]!;
    assert.deepEqual([hv1.lastSeen !== null, hv1.domains[0]!.attention], [true, []]);
  });
});

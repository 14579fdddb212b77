import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, AckPolicy } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  agentConsumerName,
  buckets,
  mirrorEventsConsumerName,
  notifierConsumerName,
  roleId,
  roleInboxPrefix,
  streams,
  subjects,
  type BusRole,
} from "@vmbs/contracts";
import { authFileNames, createBusAuth, type GeneratedBusAuth } from "./auth-config.js";
import { chainLeaseKey, createChainLeases } from "./chain-lease.js";
import { connectBus, isPermissionViolation, splitNatsUrl, type NatsConnection } from "./connect-bus.js";
import { consumeCommands } from "./consume-commands.js";
import { startNatsServer, type RunningNatsServer } from "./nats-server.js";
import { publishJson } from "./publish-json.js";
import { ensureStreams, openHostsBucket } from "./topology.js";

const rejectsWithPermission = (p: Promise<unknown>) => assert.rejects(p, (err) => isPermissionViolation(err));

/** Resolves with the error that ends a subscription (the server refuses it), or rejects after `ms`. */
async function subscriptionError(nc: NatsConnection, subject: string, ms = 5_000): Promise<unknown> {
  const sub = nc.subscribe(subject);
  const timer = setTimeout(() => sub.unsubscribe(), ms);
  try {
    for await (const _ of sub) void _;
  } catch (err) {
    return err;
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`the subscription to ${subject} was allowed`);
}

// A real nats-server started with the config `vmbs auth init` writes; every client uses a generated role nkey.
describe("bus roles on a real nats-server with the generated authorization config", () => {
  let server: RunningNatsServer;
  let dir: string;
  let auth: GeneratedBusAuth;
  const open: NatsConnection[] = [];
  const as = async (role: BusRole): Promise<NatsConnection> => {
    const credential = auth.credentials.find((c) => c.id === roleId(role));
    assert.ok(credential, `no credential for ${roleId(role)}`);
    const nc = await connectBus(server.url, `test-${roleId(role)}`, { nkeySeed: credential.seed, inboxPrefix: roleInboxPrefix(role) });
    open.push(nc);
    return nc;
  };
  const hv1: BusRole = { kind: "agent", host: "hv1" };
  const hv2: BusRole = { kind: "agent", host: "hv2", sharedRoots: ["hv1"] };
  let operator: NatsConnection;
  let agent1: NatsConnection;
  let agent2: NatsConnection;
  let scheduler: NatsConnection;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmbs-auth-"));
    auth = createBusAuth({ hosts: ["hv1", "hv2", "hv3"], sharedRoots: { hv2: ["hv1"] } });
    const configFile = join(dir, authFileNames.serverConfig);
    await writeFile(configFile, auth.serverConfig);
    server = await startNatsServer({ storeDir: join(dir, "store"), configFile });
    operator = await as({ kind: "operator" });
    await ensureStreams(operator);
    // The lease bucket's TTL is fixed by its creator: short, so a renewal happens within the test.
    await createChainLeases(operator, { holder: "setup", ttlMs: 3_000 });
    [agent1, agent2, scheduler] = await Promise.all([as(hv1), as(hv2), as({ kind: "scheduler" })]);
  });
  after(async () => {
    for (const nc of open) await nc.close().catch(() => undefined);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a client without credentials", async () => {
    await assert.rejects(connectBus(server.url, "anonymous"), /cannot connect/);
  });

  it("lets an agent start-up check the streams without the right to change them", async () => {
    assert.deepEqual(await ensureStreams(agent1), { created: [], updated: [], drifted: [] });
    // A different config (as an older or newer version would have) is reported, not applied.
    assert.deepEqual(await ensureStreams(agent1, { eventMaxAgeNs: 1_000_000_000 }), { created: [], updated: [], drifted: [streams.events] });
  });

  it("host hv1's agent cannot delete, purge or update a stream", async () => {
    const jsm = await jetstreamManager(agent1);
    await rejectsWithPermission(jsm.streams.delete(streams.events));
    await rejectsWithPermission(jsm.streams.purge(streams.commands));
    await rejectsWithPermission(jsm.streams.delete(`KV_${buckets.chainLeases}`));
    assert.ok(await (await jetstreamManager(operator)).streams.info(streams.events));
  });

  it("host hv1's agent cannot command another host or forge its events", async () => {
    await rejectsWithPermission(publishJson(agent1, subjects.cmd.backup("hv2"), { domain: "d" }));
    await rejectsWithPermission(publishJson(agent1, subjects.cmd.backup("hv1"), { domain: "d" }));
    await rejectsWithPermission(publishJson(agent1, subjects.evt.backup("hv2", "completed"), { type: "completed" }));
    await rejectsWithPermission(publishJson(agent1, subjects.evt.serviceAll("mirror", "hv1").replace("*", "completed"), {}));
  });

  it("host hv1's agent cannot read another host's commands, nor other roles' replies", async () => {
    assert.ok(isPermissionViolation(await subscriptionError(agent1, subjects.cmd.backup("hv2"))));
    assert.ok(isPermissionViolation(await subscriptionError(agent1, subjects.commandsAll)));
    assert.ok(isPermissionViolation(await subscriptionError(agent1, "_INBOX.>")));
    // Nor through hv2's durable, nor by pointing its own durable at hv2's subject.
    await rejectsWithPermission(
      consumeCommands(agent1, { stream: streams.commands, durable: agentConsumerName("backup", "hv2"), filterSubject: subjects.cmd.backup("hv2"), handler: async () => "ack" }),
    );
    const jsm = await jetstreamManager(agent1);
    await rejectsWithPermission(
      jsm.consumers.add(streams.commands, { durable_name: agentConsumerName("backup", "hv1"), filter_subject: subjects.cmd.backup("hv2"), ack_policy: AckPolicy.Explicit }),
    );
    await rejectsWithPermission(jsm.consumers.delete(streams.commands, agentConsumerName("backup", "hv1")));
  });

  it("host hv1's agent cannot take, overwrite or delete host hv2's lease", async () => {
    const leases = await createChainLeases(agent1, { holder: "agent-hv1" });
    await rejectsWithPermission(leases.acquire("hv2", "web"));
    const kv = await new Kvm(agent1).open(buckets.chainLeases);
    await rejectsWithPermission(kv.put(chainLeaseKey("hv2", "web"), "mine"));
    await rejectsWithPermission(kv.delete(chainLeaseKey("hv2", "web")));
    // hv3's lease held by the operator stays untouched by hv1's attempts.
    const held = await (await createChainLeases(operator, { holder: "hv3" })).acquire("hv3", "db");
    await rejectsWithPermission(kv.delete(held.key));
    await held.release();
  });

  it("the agent's real code paths work on its own keys: leases, inventory, events, commands", async () => {
    const leases = await createChainLeases(agent1, { holder: "agent-hv1", ttlMs: 3_000 });
    const lease = await leases.acquire("hv1", "web");
    const first = lease.revision;
    await new Promise((r) => setTimeout(r, 1_500)); // renewed at TTL/3
    assert.ok(lease.revision > first, "the lease was renewed");
    assert.equal(lease.signal.aborted, false);
    await lease.release();
    await leases.withLease("hv1", "web", {}, async () => undefined);

    const hosts = await openHostsBucket(agent1);
    await hosts.put("hv1", JSON.stringify({ host: "hv1" }));
    assert.equal((await hosts.get("hv1"))?.string(), JSON.stringify({ host: "hv1" }));
    await rejectsWithPermission(hosts.put("hv2", "{}"));

    const state = await new Kvm(agent1).create(buckets.agentState, { history: 1 });
    await state.put("hv1.boot", "b");
    await rejectsWithPermission(state.put("hv2.boot", "b"));

    const ack = await publishJson(agent1, subjects.evt.backup("hv1", "completed"), { type: "completed" });
    assert.equal(ack.stream, streams.events);
    await publishJson(agent1, subjects.evt.chain("hv1", "attention"), { type: "attention" });

    // The scheduler sees the inventory and commands hv1; hv1 receives it through its own durable.
    const schedulerHosts = await openHostsBucket(scheduler);
    const keys: string[] = [];
    for await (const k of await schedulerHosts.keys()) keys.push(k);
    assert.deepEqual(keys, ["hv1"]);
    await rejectsWithPermission(schedulerHosts.put("hv1", "{}"));
    const received: string[] = [];
    const consumer = await consumeCommands(agent1, {
      stream: streams.commands,
      durable: agentConsumerName("backup", "hv1"),
      filterSubject: subjects.cmd.backup("hv1"),
      handler: async (msg, ctx) => {
        ctx.working();
        received.push(msg.json<{ domain: string }>().domain);
        return "ack";
      },
    });
    try {
      await publishJson(scheduler, subjects.cmd.backup("hv1"), { domain: "web" }, "slot-1");
      const deadline = Date.now() + 10_000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(received, ["web"]);
    } finally {
      await consumer.stop();
    }
    // A restarted agent finds its durable and updates it (info, then create-as-update with the same filter).
    const again = await consumeCommands(agent1, { stream: streams.commands, durable: agentConsumerName("backup", "hv1"), filterSubject: subjects.cmd.backup("hv1"), ackWaitMs: 30_000, handler: async () => "ack" });
    await again.stop();
    // The scheduler may command backups, nothing else.
    await rejectsWithPermission(publishJson(scheduler, subjects.cmd.rotate("hv1"), {}));
    await rejectsWithPermission(publishJson(scheduler, subjects.evt.backup("hv1", "completed"), {}));
  });

  it("a host sharing another host's backup root may take that root's leases (and only that one)", async () => {
    const leases = await createChainLeases(agent2, { holder: "agent-hv2" });
    await leases.withLease("hv1", "web", {}, async (lease) => assert.match(lease.key, /^hv1\./));
    await leases.withLease("hv2", "web", {}, async (lease) => assert.match(lease.key, /^hv2\./));
    await rejectsWithPermission(leases.acquire("hv3", "web"));
  });

  it("the mirror, notifier and restore roles can do their part (issues 8-10) and no more", async () => {
    const mirror = await as({ kind: "mirror", host: "hv1" });
    const notifier = await as({ kind: "notifier" });
    const restore = await as({ kind: "restore", host: "hv1" });
    const seen = { mirror: [] as string[], notifier: [] as string[] };
    const durable = (nc: NatsConnection, stream: string, name: string, filter: string, into: string[]) =>
      consumeCommands(nc, { stream, durable: name, filterSubject: filter, handler: async (m) => (into.push(m.subject), "ack") });
    const consumers = [
      await durable(mirror, streams.events, mirrorEventsConsumerName("hv1"), subjects.evt.backup("hv1", "completed"), seen.mirror),
      await durable(notifier, streams.events, notifierConsumerName, subjects.eventsAll, seen.notifier),
    ];
    try {
      await publishJson(agent1, subjects.evt.backup("hv1", "completed"), { type: "completed" }, "mirror-test");
      const deadline = Date.now() + 10_000;
      while ((seen.mirror.length === 0 || seen.notifier.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Earlier tests published hv1 events too: the mirror sees only hv1's completed backups, the notifier everything.
      assert.ok(seen.mirror.length > 0 && seen.mirror.every((subject) => subject === subjects.evt.backup("hv1", "completed")), seen.mirror.join());
      assert.ok(seen.notifier.includes(subjects.evt.backup("hv1", "completed")));
    } finally {
      for (const c of consumers) await c.stop();
    }
    await rejectsWithPermission(durable(mirror, streams.events, mirrorEventsConsumerName("hv2"), subjects.evt.backup("hv2", "completed"), []));
    await publishJson(mirror, subjects.evt.serviceAll("mirror", "hv1").replace(/\*$/, "completed"), {});
    await rejectsWithPermission(publishJson(mirror, subjects.evt.backup("hv1", "completed"), {}));
    await publishJson(notifier, subjects.evt.serviceAll("notify", "hv1").replace(/\*$/, "failed"), {});
    await rejectsWithPermission(publishJson(notifier, subjects.evt.backup("hv1", "failed"), {}));
    await rejectsWithPermission(publishJson(notifier, subjects.cmd.backup("hv1"), {}));

    // The restore service answers requests on its own endpoints only.
    const endpoint = restore.subscribe(`${subjects.svc.restore("hv1")}.>`);
    void (async () => {
      for await (const m of endpoint) m.respond(JSON.stringify({ sets: [] }));
    })();
    await restore.flush();
    const reply = await operator.request(`${subjects.svc.restore("hv1")}.list`, "{}", { timeout: 5_000 });
    assert.deepEqual(reply.json(), { sets: [] });
    endpoint.unsubscribe();
    assert.ok(isPermissionViolation(await subscriptionError(restore, `${subjects.svc.restore("hv2")}.>`)));
  });

  it("the operator can read everything and command any host", async () => {
    const sub = operator.subscribe(subjects.evt.backupAll("*"), { max: 1 });
    await publishJson(operator, subjects.cmd.rotate("hv3"), {});
    await publishJson(operator, subjects.evt.backup("hv3", "started"), { type: "started" });
    for await (const m of sub) assert.equal(m.subject, subjects.evt.backup("hv3", "started"));
    const js = jetstream(operator);
    assert.ok(await js.streams.get(streams.commands));
  });
});

describe("credentials written into NATS_URL", () => {
  const rows: [string, ReturnType<typeof splitNatsUrl>][] = [
    ["nats://127.0.0.1:4222", { servers: ["nats://127.0.0.1:4222"] }],
    ["nats://vmbs:p%40ss@h:4222", { servers: ["nats://h:4222"], user: "vmbs", password: "p@ss" }],
    ["nats://tok@h", { servers: ["nats://h"], token: "tok" }],
    ["tls://a:b@h1,tls://h2", { servers: ["tls://h1", "tls://h2"], user: "a", password: "b" }],
  ];
  for (const [url, split] of rows) it(`splits ${url}`, () => assert.deepEqual(splitNatsUrl(url), split));
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, AckPolicy } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { headers } from "@nats-io/transport-node";
import {
  agentConsumerName,
  backupCommandSchema,
  buckets,
  mirrorEventsConsumerName,
  notifierConsumerName,
  parsePayload,
  roleId,
  roleInboxPrefix,
  streams,
  subjects,
  type BusRole,
} from "@vmbs/contracts";
import { authFileNames, busRolesOf, createBusAuth, type GeneratedBusAuth } from "./auth-config.js";
import { chainLeaseKey, createChainLeases } from "./chain-lease.js";
import { connectBus, isPermissionViolation, splitNatsUrl, type NatsConnection } from "./connect-bus.js";
import { consumeDurable, DurableMissingError, ensureDurable } from "./consume-durable.js";
import { agentDurable, durablesOf, notifierDurable } from "./durables.js";
import { isRedirectedStoredMessage } from "./forged-delivery.js";
import { openBucket, readBucket } from "./kv-buckets.js";
import { readHostInventories } from "./host-inventories.js";
import { commandOutcomeKey, openCommandOutcomeStore, openCommandOutcomesBucket } from "./command-outcomes.js";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { publishJson } from "./publish-json.js";
import { commandMaxBytes, ensureStreams, eventMaxMsgBytes, openHostsBucket, setUpBus } from "./topology.js";

const rejectsWithPermission = (p: Promise<unknown>) => assert.rejects(p, (err) => isPermissionViolation(err));

async function waitUntil(done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

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
    // The lease bucket's TTL is fixed by its creator: short, so a renewal happens within the test.
    await createChainLeases(operator, { holder: "setup", ttlMs: 3_000 });
    await setUpBus(operator, { durables: durablesOf(busRolesOf({ hosts: ["hv1", "hv2", "hv3"] })) });
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

  it("a role may neither inspect nor make streams and buckets: set-up (the operator) owns them", async () => {
    assert.deepEqual(await ensureStreams(agent1), { created: [], updated: [], drifted: [], unchecked: [streams.commands, streams.events] });
    assert.deepEqual(await ensureStreams(operator), { created: [], updated: [], drifted: [], unchecked: [] });
    const jsm = await jetstreamManager(agent1);
    // Stream info with subjects_filter would count every host's events.
    await rejectsWithPermission(jsm.streams.info(streams.events, { subjects_filter: ">" }));
    await rejectsWithPermission(jsm.streams.add({ name: "VMBS_MINE", subjects: ["vmbs.evt.backup.hv1.>"] }));
    await rejectsWithPermission(jsm.streams.add({ name: "KV_vmbs_new", subjects: ["$KV.vmbs_new.>"] }));
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
      consumeDurable(agent1, { stream: streams.commands, durable: agentConsumerName("backup", "hv2"), filterSubject: subjects.cmd.backup("hv2"), handler: async () => "ack" }),
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

    const { kv: state } = await openBucket(agent1, buckets.agentState);
    await state.put("hv1.boot", "b");
    await rejectsWithPermission(state.put("hv2.boot", "b"));

    const ack = await publishJson(agent1, subjects.evt.backup("hv1", "completed"), { type: "completed" });
    assert.equal(ack.stream, streams.events);
    await publishJson(agent1, subjects.evt.chain("hv1", "attention"), { type: "attention" });

    // The scheduler sees the inventory and commands hv1; hv1 receives it through its own durable.
    const schedulerHosts = await openHostsBucket(scheduler);
    assert.deepEqual((await readBucket(scheduler, buckets.hosts)).map((e) => e.key), ["hv1"]);
    // A role reads whole buckets it writes (message gets name the key in the body), and no other.
    assert.deepEqual((await readBucket(agent1, buckets.hosts)).map((e) => e.key), ["hv1"]);
    await rejectsWithPermission(readBucket(agent1, buckets.status));
    await rejectsWithPermission(schedulerHosts.put("hv1", "{}"));
    const received: string[] = [];
    const consumer = await consumeDurable(agent1, {
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
    // A restarted agent binds to its durable as set-up made it (it may not change it).
    const again = await consumeDurable(agent1, { stream: streams.commands, durable: agentConsumerName("backup", "hv1"), filterSubject: subjects.cmd.backup("hv1"), ackWaitMs: 30_000, handler: async () => "ack" });
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
      consumeDurable(nc, { stream, durable: name, filterSubject: filter, handler: async (m) => (into.push(m.subject), "ack") });
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

  it("the mirror and restore roles publish their own host's progress only; the operator hears it (issue 17.5)", async () => {
    const heard: string[] = [];
    const sub = operator.subscribe("vmbs.progress.>");
    void (async () => {
      for await (const m of sub) heard.push(`${m.subject} ${m.string()}`);
    })();
    await operator.flush();
    const tries: [BusRole, string][] = [];
    for (const host of ["hv1", "hv2"])
      for (const kind of ["mirror", "restore"] as const)
        for (const subject of [subjects.progress.mirror("hv1"), subjects.progress.restore("hv1"), subjects.progress.backup("hv1")]) tries.push([{ kind, host }, subject]);
    for (const [role, subject] of tries) {
      const nc = await as(role);
      nc.publish(subject, roleId(role));
      // A core publish is never acknowledged: the flush makes sure the server had it before the next role's.
      await nc.flush();
    }
    // One allowed message last, after every refused one, from the same connection as the last try: once it is
    // heard, anything the server let through before it would have been heard too.
    const last = await as({ kind: "restore", host: "hv2" });
    last.publish(subjects.progress.restore("hv2"), "last");
    await waitUntil(() => heard.some((h) => h.endsWith(" last")));
    sub.unsubscribe();
    assert.deepEqual(heard, [`${subjects.progress.mirror("hv1")} mirror-hv1`, `${subjects.progress.restore("hv1")} restore-hv1`, `${subjects.progress.restore("hv2")} last`]);
  });

  it("a service role takes only its own service's discovery requests: no '>' where its allow entry ends in '*'", async () => {
    // nats-server 2.9 matches a subscription's literal '>' token against an allowed '*': `$SRV.*` let restore-hv1
    // subscribe to `$SRV.>` and take (and, allowed to respond, answer) the status service's discovery requests.
    const restore = await as({ kind: "restore", host: "hv1" });
    const status = await as({ kind: "status" });
    for (const [nc, other] of [[restore, "vmbs-status"], [status, "vmbs-restore"]] as const) {
      assert.ok(isPermissionViolation(await subscriptionError(nc, "$SRV.>")));
      assert.ok(isPermissionViolation(await subscriptionError(nc, `$SRV.PING.${other}`)));
    }
    // What NATS micro itself subscribes to stays allowed: pings to all, to the service, to the instance.
    const seen: string[] = [];
    for (const subject of ["$SRV.PING", "$SRV.PING.vmbs-restore", "$SRV.INFO.vmbs-restore.id1"]) restore.subscribe(subject, { callback: (_e, m) => void seen.push(m.subject) });
    await restore.flush();
    for (const subject of ["$SRV.PING", "$SRV.PING.vmbs-restore", "$SRV.INFO.vmbs-restore.id1"]) operator.publish(subject, "");
    await waitUntil(() => seen.length === 3);
    assert.deepEqual(seen.sort(), ["$SRV.INFO.vmbs-restore.id1", "$SRV.PING", "$SRV.PING.vmbs-restore"]);
  });

  it("no role can have the server deliver its own writes to another host's restore endpoint (issue 14.1)", async () => {
    const restore2 = await as({ kind: "restore", host: "hv2" });
    const delivered: string[] = [];
    const endpoint = restore2.subscribe(`${subjects.svc.restore("hv2")}.>`, { queue: "q" });
    void (async () => {
      for await (const m of endpoint) delivered.push(m.subject);
    })();
    await restore2.flush();
    const push = { deliver_subject: subjects.svc.restoreEndpoint("hv2", "replicate"), deliver_group: "q", ack_policy: AckPolicy.None };
    const hostsStream = `KV_${buckets.hosts}`;
    // The reproduced walk-around: hv1's agent writes a replicate request to its own key, then points a push
    // consumer filtered on that key at hv2's endpoint (named, ephemeral, or as its own command durable).
    const hosts = await openHostsBucket(agent1);
    await hosts.put("hv1", JSON.stringify({ domain: "db", as: "evil", to: "qemu+ssh://attacker@203.0.113.9/system", consent: true }));
    const agentJsm = await jetstreamManager(agent1);
    await rejectsWithPermission(agentJsm.consumers.add(hostsStream, { ...push, durable_name: "evil", filter_subject: `$KV.${buckets.hosts}.hv1` }));
    await rejectsWithPermission(agentJsm.consumers.add(hostsStream, { ...push, filter_subject: `$KV.${buckets.hosts}.hv1` }));
    await rejectsWithPermission(agentJsm.consumers.add(streams.commands, { ...push, durable_name: agentConsumerName("backup", "hv1"), filter_subject: subjects.cmd.backup("hv1") }));
    // The mirror through a lease key of its root.
    const mirror = await as({ kind: "mirror", host: "hv1" });
    await rejectsWithPermission((await jetstreamManager(mirror)).consumers.add(`KV_${buckets.chainLeases}`, { ...push, filter_subject: `$KV.${buckets.chainLeases}.hv1.>` }));
    // The notifier before its durable exists: it may not make it (as a push consumer or at all) and says why.
    const notifier = await as({ kind: "notifier" });
    const operatorJsm = await jetstreamManager(operator);
    await operatorJsm.consumers.delete(streams.events, notifierConsumerName);
    await rejectsWithPermission((await jetstreamManager(notifier)).consumers.add(streams.events, { ...push, durable_name: notifierConsumerName, filter_subject: subjects.eventsAll }));
    await assert.rejects(consumeDurable(notifier, { ...notifierDurable, handler: async () => "ack" }), DurableMissingError);
    await ensureDurable(operatorJsm, notifierDurable);
    await hosts.put("hv1", JSON.stringify({ host: "hv1" }));
    await restore2.flush();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(delivered, [], "nothing reached hv2's restore endpoint");
    endpoint.unsubscribe();
  });

  it("a consumer takes only messages of its own subject: one pushed into its inbox from a bucket is terminated unseen", async () => {
    const durable = agentDurable("check", "hv1");
    const seen: string[] = [];
    const refused: string[] = [];
    // Learn the inbox the agent's pull requests name (as anyone able to read the API subjects could), then aim a
    // push consumer of a bucket at it: only the operator may make one, but the agent must not depend on that.
    const sniff = operator.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${durable.stream}.${durable.durable}`, { max: 1 });
    const consumer = await consumeDurable(agent1, { ...durable, handler: async (m) => (seen.push(m.subject), "ack"), onError: (err) => refused.push((err as Error).message) });
    const operatorJsm = await jetstreamManager(operator);
    let pushed: string | undefined;
    try {
      let inbox = "";
      for await (const m of sniff) inbox = m.reply ?? "";
      assert.match(inbox, /^_INBOX\.agent-hv1\./);
      await (await openHostsBucket(operator)).put("hv1", JSON.stringify({ domain: "web" }));
      pushed = (await operatorJsm.consumers.add(`KV_${buckets.hosts}`, { deliver_subject: inbox, filter_subject: `$KV.${buckets.hosts}.hv1`, ack_policy: AckPolicy.None })).name;
      await waitUntil(() => refused.length > 0);
      assert.match(refused[0] ?? "", /refused a message on \$KV\.vmbs_hosts\.hv1/);
      await publishJson(operator, subjects.cmd.check("hv1"), { domain: "web" }, "own-subject");
      await waitUntil(() => seen.length > 0);
      assert.deepEqual(seen, [subjects.cmd.check("hv1")], "the handler saw its own command and nothing else");
    } finally {
      if (pushed) await operatorJsm.consumers.delete(`KV_${buckets.hosts}`, pushed);
      await consumer.stop();
    }
  });

  /**
   * Stores `value` on `subject` as a redirected direct get answer would arrive there (a stored message's headers):
   * roles may no longer make the server do it (see the test above), the services still refuse what such an answer is.
   */
  const storeAsRedirected = async (subject: string, value: unknown): Promise<void> => {
    const h = headers();
    for (const [k, v] of [["Nats-Stream", "KV_x"], ["Nats-Subject", "$KV.x.hv1"], ["Nats-Sequence", "1"]] as const) h.set(k, v);
    await jetstream(operator).publish(subject, JSON.stringify(value), { headers: h });
  };

  it("an agent cannot have the server publish a value into another host's command subject (its KV read's reply subject); a stored answer would be refused by every consumer", async () => {
    const hosts = await openHostsBucket(agent1);
    await hosts.put("hv1", JSON.stringify({ domain: "db", level: "full", requestId: "forged" }));
    const jsm = await jetstreamManager(operator);
    const before = (await jsm.streams.info(streams.commands)).state.messages;
    agent1.publish(`$JS.API.DIRECT.GET.KV_${buckets.hosts}.$KV.${buckets.hosts}.hv1`, "", { reply: subjects.cmd.backup("hv2") });
    agent1.publish(`$JS.API.STREAM.MSG.GET.KV_${buckets.hosts}`, JSON.stringify({ last_by_subj: `$KV.${buckets.hosts}.hv1` }), { reply: subjects.cmd.backup("hv2") });
    await agent1.flush().catch(() => undefined);
    await waitUntil(() => false, 500);
    // A direct get is not the agent's to make. The message get's answer is stored there, but it is an API response
    // ({type, message: {data: <base64>}}), which no command schema takes: the value never arrives as a command.
    const info = await jsm.streams.info(streams.commands, { subjects_filter: subjects.cmd.backup("hv2") });
    assert.ok(info.state.messages <= before + 1, "at most the message get's answer was stored");
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(streams.commands, { seq }).catch(() => null);
      if (m?.subject !== subjects.cmd.backup("hv2")) continue;
      assert.equal(parsePayload(backupCommandSchema, m.data).ok, false, `stored on hv2's subject and taken as a command: ${m.string()}`);
      assert.equal(isRedirectedStoredMessage(m.header), false);
    }
    await jsm.streams.purge(streams.commands, { filter: subjects.cmd.backup("hv2") });
    await storeAsRedirected(subjects.cmd.backup("hv2"), { domain: "db", level: "full", requestId: "forged" });
    const seen: string[] = [];
    const refused: string[] = [];
    const consumer = await consumeDurable(agent2, {
      ...agentDurable("backup", "hv2"),
      handler: async (m) => (seen.push(m.string()), "ack"),
      onError: (err) => refused.push((err as Error).message),
    });
    try {
      await waitUntil(() => refused.length > 0);
      assert.match(refused[0] ?? "", /refused a message on vmbs\.cmd\.backup\.hv2/);
      await publishJson(operator, subjects.cmd.backup("hv2"), { domain: "web" }, "genuine-hv2");
      await waitUntil(() => seen.length > 0);
      assert.deepEqual(seen, [JSON.stringify({ domain: "web" })], "only the genuine command reached the handler");
    } finally {
      await consumer.stop();
      await hosts.put("hv1", JSON.stringify({ host: "hv1" }));
    }
  });

  it("a redirected answer stored under another host's key is read as absent: no inventory, no outcome", async () => {
    const forge = (bucket: string, value: unknown, victimKey: string) => storeAsRedirected(`$KV.${bucket}.${victimKey}`, value);
    const inventory = (host: string, domains: string[]) => ({ host, hostname: host, agentVersion: "t", heartbeatAt: new Date().toISOString(), domains: domains.map((name) => ({ name, state: "running", scheduled: true })) });
    // hv3's inventory, as hv1 could once forge it: it names hv3 (so the key check alone would take it) with 300 domains.
    await forge(buckets.hosts, inventory("hv3", Array.from({ length: 300 }, (_, i) => `d${i}`)), "hv3");
    const stored = await (await jetstreamManager(operator)).streams.getMessage(`KV_${buckets.hosts}`, { last_by_subj: `$KV.${buckets.hosts}.hv3` });
    assert.match(stored?.string() ?? "", /"host":"hv3"/, "the forged value is stored under hv3's key");
    const { inventories } = await readHostInventories(scheduler);
    assert.ok(!inventories.some((i) => i.host === "hv3"), "the forged inventory is not read");
    // A genuine entry next to it still is.
    await (await openHostsBucket(operator)).put("hv2", JSON.stringify(inventory("hv2", ["web"])));
    assert.ok((await readHostInventories(scheduler)).inventories.some((i) => i.host === "hv2"));
    // A forged outcome would make hv2's agent answer a scheduled command from it instead of running it.
    const victim = commandOutcomeKey("hv2", "msg-id:backup:hv2:db:slot");
    await forge(buckets.commandOutcomes, { identity: "msg-id:backup:hv2:db:slot", state: "done", disposition: "ack", events: [] }, victim);
    const outcomes = await openCommandOutcomesBucket(agent2);
    assert.equal((await outcomes.read(victim))?.forged, true);
    const store = await openCommandOutcomeStore({ dir: await mkdtemp(join(dir, "outcomes-")), kv: outcomes });
    assert.equal(await store.get(victim), undefined, "hv2's agent would run the command, not answer it from the forgery");
    await outcomes.kv.put(victim, JSON.stringify({ identity: "genuine" }));
    assert.deepEqual(await store.get(victim), { identity: "genuine" }, "a genuine record is read");
  });

  it("a forged value on another host's chain lease neither takes the lease from its holder nor keeps anyone from acquiring it", async () => {
    const leases2 = await createChainLeases(agent2, { holder: "agent-hv2", ttlMs: 3_000 });
    const held = await leases2.acquire("hv2", "db");
    const forgeOnto = (key: string) => storeAsRedirected(`$KV.${buckets.chainLeases}.${key}`, {});
    await forgeOnto(held.key);
    await waitUntil(() => false, 2_500); // past a renewal (TTL/3)
    assert.equal(held.signal.aborted, false, "the holder kept its lease");
    await held.release();
    // A free key a forged value occupies is taken.
    const key = chainLeaseKey("hv2", "web");
    await forgeOnto(key);
    await waitUntil(() => false, 300);
    const taken = await leases2.acquire("hv2", "web");
    assert.equal(taken.key, key);
    await taken.release();
  });

  it("no role can have the server publish a value of its own into the JetStream API (a KV read's reply subject): no stream, consumer or limit of its making", async () => {
    // A direct get answers with the stored value on the request's reply subject, unchecked, and the JetStream API
    // takes what the server publishes there as the account's own request: a role that may write its own key and
    // read it back would create streams and consumers and lift the limits set-up gave (reproduced on 2.9.10).
    const jsm = await jetstreamManager(operator);
    const limits = (await jsm.streams.info(streams.commands)).config;
    const { kv } = await openBucket(agent1, buckets.agentState);
    const attempts: [string, unknown][] = [
      ["$JS.API.STREAM.CREATE.VMBS_EVIL", { name: "VMBS_EVIL", subjects: [`${subjects.svc.restore("hv2")}.>`] }],
      [`$JS.API.STREAM.UPDATE.${streams.commands}`, { ...limits, max_msgs: -1, max_bytes: -1, allow_rollup_hdrs: true }],
      [
        `$JS.API.CONSUMER.CREATE.${streams.commands}`,
        { stream_name: streams.commands, config: { name: "evil", deliver_subject: `${roleInboxPrefix(hv1)}.evil`, filter_subject: subjects.cmd.mirror("hv2"), ack_policy: AckPolicy.None } },
      ],
    ];
    for (const [api, body] of attempts) {
      await kv.put("hv1.carrier", JSON.stringify(body));
      // The KV read of its own key, as the role's read path would make it, answered on the API's subject.
      agent1.publish(`$JS.API.DIRECT.GET.KV_${buckets.agentState}.$KV.${buckets.agentState}.hv1.carrier`, "", { reply: api });
      agent1.publish(`$JS.API.STREAM.MSG.GET.KV_${buckets.agentState}`, JSON.stringify({ last_by_subj: `$KV.${buckets.agentState}.hv1.carrier` }), { reply: api });
    }
    await agent1.flush().catch(() => undefined);
    await waitUntil(() => false, 500);
    await assert.rejects(jsm.streams.info("VMBS_EVIL"), /stream not found/);
    const after = (await jsm.streams.info(streams.commands)).config;
    assert.deepEqual([after.max_msgs, after.max_bytes, after.allow_rollup_hdrs], [limits.max_msgs, limits.max_bytes, false]);
    await assert.rejects(jsm.consumers.info(streams.commands, "evil"), /consumer not found/);
    // The role still reads its own key.
    assert.equal((await kv.get("hv1.carrier"))?.string(), JSON.stringify(attempts.at(-1)![1]));
  });

  it("a rollup header on one's own key is refused and every other host's keys stay (issue 14.4)", async () => {
    const operatorHosts = await openHostsBucket(operator);
    await operatorHosts.put("hv2", JSON.stringify({ host: "hv2" }));
    for (const rollup of ["all", "sub"]) {
      const h = headers();
      h.set("Nats-Rollup", rollup);
      await assert.rejects(jetstream(agent1).publish(`$KV.${buckets.hosts}.hv1`, "{}", { headers: h }), /rollup/i);
      await assert.rejects(jetstream(operator).publish(subjects.evt.backup("hv3", "started"), "{}", { headers: h }), /rollup/i);
    }
    assert.equal((await operatorHosts.get("hv2"))?.string(), JSON.stringify({ host: "hv2" }));
  });

  it("streams and buckets are bounded: an oversized value, command or event and a command flood are refused, not stored (issue 14.7)", async () => {
    const jsm = await jetstreamManager(operator);
    for (const name of [streams.commands, streams.events, ...Object.values(buckets).map((b) => `KV_${b}`)]) {
      const { config } = await jsm.streams.info(name);
      assert.ok(config.max_bytes > 0 && config.max_msg_size > 0 && config.max_age > 0, `${name} has limits`);
      assert.equal(config.allow_rollup_hdrs, false, `${name} refuses rollups`);
    }
    const hosts = await openHostsBucket(agent1);
    await hosts.put("hv1", JSON.stringify({ host: "hv1" }));
    await assert.rejects(hosts.put("hv1", "x".repeat(900 * 1024)), /maximum|size/i);
    assert.equal((await hosts.get("hv1"))?.string(), JSON.stringify({ host: "hv1" }));
    await assert.rejects(publishJson(operator, subjects.cmd.backup("hv3"), { domain: "x".repeat(commandMaxBytes) }), /maximum|size/i);
    await assert.rejects(publishJson(agent1, subjects.evt.backup("hv1", "failed"), { reason: "x".repeat(eventMaxMsgBytes) }), /maximum|size/i);
    // A flood beyond the queue's bound is refused (discard new); what was queued stays.
    const before = (await jsm.streams.info(streams.commands)).state.messages;
    await ensureStreams(operator, { commandMaxMsgs: before + 3 });
    try {
      for (let i = 0; i < 3; i++) await publishJson(operator, subjects.cmd.backup("hv3"), { domain: `d${i}` }, `flood-${i}`);
      await assert.rejects(publishJson(operator, subjects.cmd.backup("hv3"), { domain: "d3" }, "flood-3"), /maximum messages/i);
      assert.equal((await jsm.streams.info(streams.commands)).state.messages, before + 3);
    } finally {
      await jsm.streams.purge(streams.commands, { filter: subjects.cmd.backup("hv3") });
      await ensureStreams(operator);
    }
  });

  it("the local server's disk budget is set: JetStream refuses to reserve more than max_file_store", async () => {
    const dir2 = await mkdtemp(join(tmpdir(), "vmbs-store-budget-"));
    const small = await startNatsServer({ storeDir: join(dir2, "store"), configFile: join(dir, authFileNames.serverConfig), maxFileStoreBytes: 64 * 1024 * 1024 });
    try {
      const credential = auth.credentials.find((c) => c.id === "operator")!;
      const nc = await connectBus(small.url, "budget", { nkeySeed: credential.seed, inboxPrefix: roleInboxPrefix({ kind: "operator" }) });
      try {
        const info = await (await jetstreamManager(nc)).getAccountInfo();
        assert.equal(info.limits.max_storage, -1);
        // The streams reserve 1.25 GiB: more than this server's 64 MiB, so set-up is refused rather than filling the disk.
        await assert.rejects(ensureStreams(nc), /insufficient|resources|storage/i);
      } finally {
        await nc.close();
      }
    } finally {
      await small.stop();
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it("a restore service's reply after more than 2 minutes still reaches the requester (issue 14.6)", { timeout: 240_000 }, async () => {
    // nats-server lets a reply through for 2 minutes unless allow_responses says otherwise; a restore takes longer.
    const restore = await as({ kind: "restore", host: "hv3" });
    const endpoint = restore.subscribe(subjects.svc.restoreEndpoint("hv3", "run"), { max: 1 });
    void (async () => {
      for await (const m of endpoint) {
        await new Promise((r) => setTimeout(r, 125_000));
        m.respond(JSON.stringify({ restored: true }));
      }
    })();
    await restore.flush();
    const reply = await operator.request(subjects.svc.restoreEndpoint("hv3", "run"), "{}", { timeout: 200_000 });
    assert.deepEqual(reply.json(), { restored: true });
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

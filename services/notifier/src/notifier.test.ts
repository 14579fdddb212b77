import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connectBus, ensureStreams, openHostsBucket, publishJson, type NatsConnection } from "@vmbs/bus";
import { parseNotifyUrl } from "@vmbs/contracts";
import { eventMessageId, notifyDigestSchema, notifyFailedSchema, subjects } from "@vmbs/contracts";
import { startHttpReceiver, startTestNats, startTestRedis, waitFor, type TestNats, type TestRedis } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { startNotifier, type NotifierHandle } from "./notifier.js";
import { startRedisServer } from "./redis-server.js";

describe("notifier on real NATS, Redis and HTTP receivers", () => {
  let nats: TestNats;
  let redis: TestRedis;
  let nc: NatsConnection;
  const logSink = new PassThrough();
  let logText = "";
  logSink.on("data", (c: Buffer) => (logText += c.toString("utf8")));
  const logger = createLogger({ name: "notifier-test", level: "debug", stream: logSink });

  before(async () => {
    nats = await startTestNats();
    redis = await startTestRedis();
    nc = await connectBus(nats.url, "notifier-test");
    await ensureStreams(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
    await redis?.stop();
  });

  const start = (urls: string[], delivery = { attempts: 8, retryBaseMs: 500, rateMs: 50 }, redisUrl = `unix://${redis.socketPath}`): Promise<NotifierHandle> =>
    startNotifier({ nc, targets: urls.map(parseNotifyUrl), redisUrl, sshOptions: [], unraidHost: "localhost", logger, delivery, sendTimeoutMs: 3_000 });

  let run = 0;
  const failBackup = async (host: string, domain: string, reason: string): Promise<string> => {
    const runId = `run-${++run}`;
    const subject = subjects.evt.backup(host, "failed");
    await publishJson(nc, subject, { type: "failed", host, domain, runId, at: new Date().toISOString(), bytesWritten: 0, durationMs: 10, reason }, eventMessageId(subject, runId));
    return runId;
  };

  it("one failed backup → exactly one alert per matching target with the reason; successes and other hosts stay quiet; no secret is logged", async () => {
    const a = await startHttpReceiver();
    const b = await startHttpReceiver();
    const notifier = await start([`json://hook:S3CRET@${a.base}/a`, `json://${b.base}/b?hosts=other`]);
    try {
      const subject = subjects.evt.backup("hv1", "completed");
      await publishJson(nc, subject, { type: "completed", host: "hv1", domain: "web", runId: "ok-1", at: "t", level: "inc", checkpoint: "virtnbdbackup.1", bytesWritten: 1, durationMs: 1, folder: "/b/web" }, eventMessageId(subject, "ok-1"));
      await failBackup("hv1", "web", "engine exited 1: No space left on device");
      await waitFor(() => a.received.length >= 1, { timeoutMs: 15_000, what: "the alert" });
      await sleep(1_500); // room for a duplicate to show up
      assert.equal(a.received.length, 1);
      const body = a.received[0]!.body as { title: string; message: string; type: string; event: { domain: string } };
      assert.equal(body.type, "failure");
      assert.equal(body.title, "VM-Babysitter: web on hv1: backup failed");
      assert.match(body.message, /Reason: engine exited 1: No space left on device/);
      assert.equal(body.event.domain, "web");
      assert.equal(a.received[0]!.headers.authorization, `Basic ${Buffer.from("hook:S3CRET").toString("base64")}`);
      assert.equal(b.received.length, 0);
      assert.match(logText, /notification sent/);
      assert.ok(!logText.includes("S3CRET"));
    } finally {
      await notifier.stop();
      await a.close();
      await b.close();
    }
  });

  it("a dry run's planned events notify no one, not even a target that wants every info event", async () => {
    const a = await startHttpReceiver();
    const notifier = await start([`json://${a.base}/all?severity=info`]);
    try {
      const planned = subjects.evt.chain("hv1", "planned");
      await publishJson(nc, planned, { type: "planned", host: "hv1", domain: "web", at: new Date().toISOString(), trigger: "command", step: "would delete web.2026-01-01+00:00:00.0000000000", reason: "dry run" });
      const mirrorPlanned = subjects.evt.mirror("hv1", "planned");
      await publishJson(nc, mirrorPlanned, { type: "planned", host: "hv1", domain: "web", runId: "dry-1", at: new Date().toISOString(), trigger: "command", target: "/m", reason: "dry run" });
      // Published after them: once it arrives, the planned ones were handled.
      const archived = subjects.evt.chain("hv1", "archived");
      await publishJson(nc, archived, { type: "archived", host: "hv1", domain: "web", at: new Date().toISOString(), trigger: "rotation", step: "archive → web.x", reason: "rotation" });
      await waitFor(() => a.received.length >= 1, { timeoutMs: 15_000, what: "the archived notification" });
      await sleep(1_000);
      assert.deepEqual(a.received.map((r) => (r.body as { title: string }).title), ["VM-Babysitter: web on hv1: chain archived"]);
    } finally {
      await notifier.stop();
      await a.close();
    }
  });

  it("a flood of refused backup commands notifies each target once an hour per domain, not once per command", async () => {
    const a = await startHttpReceiver();
    const notifier = await start([`json://${a.base}/flood`]);
    try {
      const subject = subjects.evt.backup("hv5", "failed");
      for (let i = 0; i < 40; i++) {
        const runId = `refused-${i}`;
        const reason = "refused: db already has 8 backup commands waiting or running on hv5 (the most one domain may hold); this one was not queued";
        await publishJson(nc, subject, { type: "failed", host: "hv5", domain: "db", runId, at: new Date().toISOString(), reason, refused: true }, eventMessageId(subject, runId));
      }
      await failBackup("hv5", "db", "engine exited 1");
      await waitFor(() => a.received.length >= 2, { timeoutMs: 15_000, what: "the alerts" });
      await sleep(1_500); // room for more to show up
      const reasons = a.received.map((r) => (r.body as { message: string }).message);
      assert.equal(a.received.length, 2, reasons.join("\n"));
      assert.equal(reasons.filter((m) => /Reason: refused:/.test(m)).length, 1);
      assert.equal(reasons.filter((m) => /Reason: engine exited 1/.test(m)).length, 1);
    } finally {
      await notifier.stop();
      await a.close();
    }
  });

  it("a target down for 30 s, and a notifier restarted meanwhile, still gets the alert once it is back — exactly once", async () => {
    const a = await startHttpReceiver();
    await a.close(); // connection refused from now on
    let notifier = await start([`json://${a.base}/down`]);
    try {
      await failBackup("hv1", "db", "chain broken");
      await sleep(4_000);
      await notifier.stop(); // the job waits in Redis; the event was acked once Redis held it
      notifier = await start([`json://${a.base}/down`]);
      await sleep(26_000);
      assert.equal(a.received.length, 0);
      await a.listen();
      // The retries are 0.5 s doubling (8 attempts, ~64 s in all): the next one after 30 s down comes within ~32 s.
      await waitFor(() => a.received.length >= 1, { timeoutMs: 60_000, what: "the delayed alert" });
      await sleep(2_000);
      assert.equal(a.received.length, 1);
      assert.match((a.received[0]!.body as { message: string }).message, /Reason: chain broken/);
    } finally {
      await notifier.stop();
      await a.close();
    }
  });

  it("a delivery that exhausts its retries becomes vmbs.evt.notify.<host>.failed, which reaches the other targets but not the dead one", async () => {
    const dead = await startHttpReceiver();
    dead.status = 500;
    const alive = await startHttpReceiver();
    const gaveUp: unknown[] = [];
    const sub = nc.subscribe(subjects.evt.serviceAll("notify", "*"));
    void (async () => {
      for await (const m of sub) gaveUp.push(m.json());
    })();
    const notifier = await start([`json://${dead.base}/dead`, `json://${alive.base}/alive?hosts=hv2`], { attempts: 2, retryBaseMs: 200, rateMs: 50 });
    try {
      await failBackup("hv2", "mail", "timeout");
      await waitFor(() => gaveUp.length >= 1, { timeoutMs: 20_000, what: "the notify failed event" });
      const ev = notifyFailedSchema.parse(gaveUp[0]);
      assert.equal(ev.host, "hv2");
      assert.equal(ev.attempts, 2);
      assert.equal(ev.target, `json://${dead.base}/***`);
      assert.match(ev.reason, /HTTP 500/);
      await waitFor(() => alive.received.length >= 2, { timeoutMs: 15_000, what: "the alert and the give-up notice at the live target" });
      await sleep(1_500);
      const titles = alive.received.map((r) => (r.body as { title: string }).title);
      assert.deepEqual(titles.sort(), ["VM-Babysitter: mail on hv2: backup failed", `VM-Babysitter: mail on hv2: notification to json://${dead.base}/*** failed`].sort());
      assert.equal(gaveUp.length, 1);
    } finally {
      sub.unsubscribe();
      await notifier.stop();
      await dead.close();
      await alive.close();
    }
  });

  it("Redis killed (SIGKILL) and restarted mid-delivery: every alert arrives exactly once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-notifier-redis-"));
    let own = await startRedisServer(dir);
    const a = await startHttpReceiver();
    a.status = 503; // down: the first alert waits in Redis
    const notifier = await start([`json://${a.base}/r`], { attempts: 20, retryBaseMs: 300, rateMs: 50 }, own.url);
    try {
      await failBackup("hv3", "one", "first");
      await waitFor(() => logText.includes("HTTP 503"), { timeoutMs: 10_000, what: "a failed attempt" });
      await sleep(1_500); // the append-only file is fsync'd every second
      process.kill(own.pid, "SIGKILL");
      await own.exited;
      await failBackup("hv3", "two", "second"); // published while Redis is down: NATS keeps it until Redis is back
      await sleep(3_000);
      own = await startRedisServer(dir);
      a.status = 200;
      await waitFor(() => a.received.length >= 2, { timeoutMs: 30_000, what: "both alerts" });
      await sleep(2_000);
      const reasons = a.received.map((r) => /Reason: (\w+)/.exec((r.body as { message: string }).message)?.[1]).sort();
      assert.deepEqual(reasons, ["first", "second"]);
    } finally {
      await notifier.stop();
      await a.close();
      await own.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("relays the status service's fleet alarms (stale, silent, back) like any event, with what to do", async () => {
    const a = await startHttpReceiver();
    const notifier = await start([`json://${a.base}/alarm?hosts=hv4`]);
    const alarm = async (type: "stale" | "silent" | "back", payload: Record<string, unknown>): Promise<void> => {
      const subject = subjects.evt.fleet("hv4", type);
      await publishJson(nc, subject, { type, host: "hv4", at: new Date().toISOString(), ...payload }, eventMessageId(subject, `${type}-1`));
    };
    try {
      const since = new Date(Date.now() - 30 * 3_600_000).toISOString();
      await alarm("stale", { domain: "old", since, lastCompletedAt: since, rpoSeconds: 93_600, reason: "old on hv4: no good backup since then (RPO 26 h)" });
      await alarm("silent", { lastHeartbeatAt: since, reason: "the agent of hv4 stopped heart-beating" });
      await alarm("back", { silentSince: since, reason: "the agent of hv4 heart-beats again" });
      await waitFor(() => a.received.length >= 3, { timeoutMs: 15_000, what: "three alerts" });
      const bodies = a.received.map((r) => r.body as { title: string; message: string });
      assert.deepEqual(bodies.map((b) => b.title).sort(), [
        "VM-Babysitter: hv4: agent heart-beats again",
        "VM-Babysitter: hv4: agent stopped heart-beating",
        "VM-Babysitter: old on hv4: no recent backup",
      ]);
      assert.match(bodies.find((b) => b.title.includes("no recent backup"))!.message, /What to do: check the domain's recent failed events/);
    } finally {
      await notifier.stop();
      await a.close();
    }
  });

  it("a scheduled run of 3 domains (2 ok, 1 failed) gives one digest per digest target with the right counts, once", async () => {
    const a = await startHttpReceiver();
    const b = await startHttpReceiver();
    const hosts = await openHostsBucket(nc);
    const domains = ["alpha", "beta", "gamma"];
    await hosts.put("hv5", JSON.stringify({ host: "hv5", hostname: "hv5", agentVersion: "t", heartbeatAt: new Date().toISOString(), domains: domains.map((name) => ({ name, state: "running", scheduled: true })) }));
    const digests: unknown[] = [];
    const sub = nc.subscribe(subjects.evt.notify("hv5", "digest"));
    void (async () => {
      for await (const m of sub) digests.push(m.json());
    })();
    const notifier = await start([`json://${a.base}/all?hosts=hv5`, `json://${b.base}/nodigest?hosts=hv5&digest=no`]);
    const requestId = "schedule:2026-12-01T03:00:00.000Z";
    const outcome = async (domain: string, type: "completed" | "failed", msgId = domain): Promise<void> => {
      const subject = subjects.evt.backup("hv5", type);
      const common = { type, host: "hv5", domain, requestId, runId: `d-${domain}`, at: new Date().toISOString(), durationMs: 2_000 };
      const payload = type === "completed" ? { ...common, level: "inc", checkpoint: "virtnbdbackup.4", bytesWritten: 3 * 1_048_576, folder: `/b/${domain}` } : { ...common, bytesWritten: 0, reason: "qemu: I/O error" };
      await publishJson(nc, subject, payload, eventMessageId(subject, msgId));
    };
    try {
      await outcome("alpha", "completed");
      await outcome("gamma", "failed");
      await sleep(1_000);
      assert.equal(digests.length, 0); // beta is still running
      await outcome("beta", "completed");
      await waitFor(() => a.received.length >= 2 && b.received.length >= 1, { timeoutMs: 15_000, what: "the alerts and the digest" });
      await outcome("beta", "completed", "beta-again"); // a late repeat of the last event
      await sleep(2_000);
      assert.equal(digests.length, 1);
      const d = notifyDigestSchema.parse(digests[0]);
      assert.deepEqual([d.succeeded, d.failed, d.bytesWritten, d.durationMs], [2, 1, 6 * 1_048_576, 6_000]);
      assert.deepEqual(d.domains.map((x) => `${x.domain}:${x.outcome}`), ["alpha:completed", "beta:completed", "gamma:failed"]);
      const titles = a.received.map((r) => (r.body as { title: string }).title).sort();
      assert.deepEqual(titles, ["VM-Babysitter: gamma on hv5: backup failed", "VM-Babysitter: hv5: 1 of 3 backups failed"]);
      const digestMessage = (a.received.find((r) => (r.body as { title: string }).title.includes("of 3"))!.body as { message: string }).message;
      assert.match(digestMessage, /Succeeded: 2 of 3, failed: 1; 6\.0 MiB written in 6 s/);
      assert.match(digestMessage, /FAILED  gamma: qemu: I\/O error/);
      assert.deepEqual(b.received.map((r) => (r.body as { title: string }).title), ["VM-Babysitter: gamma on hv5: backup failed"]);
    } finally {
      sub.unsubscribe();
      await notifier.stop();
      await a.close();
      await b.close();
    }
  });

  it("another host's agent cannot hide a run's digest by taking its message id first", async () => {
    // VMBS_EVT drops a repeated Nats-Msg-Id whatever the subject, any role sets that header on its own events, and
    // a scheduled run's requestId is the slot every agent sees: an id derived from (host, run) alone was computable.
    const a = await startHttpReceiver();
    const hosts = await openHostsBucket(nc);
    await hosts.put("hv7", JSON.stringify({ host: "hv7", hostname: "hv7", agentVersion: "t", heartbeatAt: new Date().toISOString(), domains: [{ name: "solo", state: "running", scheduled: true }] }));
    const requestId = "schedule:2026-12-02T03:00:00.000Z";
    const digestSubject = subjects.evt.notify("hv7", "digest");
    // hv6's agent, on its own subject, with the id hv7's digest would have had.
    const predicted = eventMessageId(digestSubject, createHash("sha256").update(`vmbs:notify:run:hv7:${requestId}`).digest("hex").slice(0, 32));
    const own = subjects.evt.backup("hv6", "started");
    await publishJson(nc, own, { type: "started", host: "hv6", domain: "x", runId: "poison", level: "full", requestedLevel: "auto", at: new Date().toISOString() }, predicted);
    const notifier = await start([`json://${a.base}/all?hosts=hv7`]);
    try {
      const subject = subjects.evt.backup("hv7", "failed");
      await publishJson(nc, subject, { type: "failed", host: "hv7", domain: "solo", requestId, runId: "d-solo", at: new Date().toISOString(), durationMs: 1_000, bytesWritten: 0, reason: "qemu: I/O error" }, eventMessageId(subject, "d-solo"));
      // Notified from the stream (the notifier's durable): a digest the stream dropped would reach no one.
      await waitFor(() => a.received.some((r) => (r.body as { title: string }).title === "VM-Babysitter: hv7: 1 of 1 backups failed"), { timeoutMs: 15_000, what: "the digest notification" });
    } finally {
      await notifier.stop();
      await a.close();
    }
  });

  it("malformed events ({} on a digest subject, a wrong type or host, no object) are dropped with a log line and hold up nothing", async () => {
    const a = await startHttpReceiver();
    const notifier = await start([`json://${a.base}/malformed?hosts=hv9`]);
    try {
      const digest = subjects.evt.notify("hv9", "digest");
      const failed = subjects.evt.backup("hv9", "failed");
      const bad: [string, unknown][] = [
        [digest, {}],
        [digest, {}],
        [digest, {}],
        [digest, {}],
        [digest, { type: "digest", host: "hv9" }],
        [failed, { type: "completed", host: "hv9", domain: "web", runId: "r", at: "t", level: "inc", checkpoint: "c", bytesWritten: 1, durationMs: 1, folder: "web" }],
        [failed, { type: "failed", host: "hv1", domain: "web", runId: "r", at: "t", reason: "someone else's" }],
        [failed, "not an object"],
        ["vmbs.evt.constructor.hv9.failed", { type: "failed", host: "hv9" }],
      ];
      // More than the consumer's 4 in flight: each one retried forever used to take a slot for good.
      for (const [i, [subject, payload]] of bad.entries()) await publishJson(nc, subject, payload, eventMessageId(subject, `bad-${i}`));
      await failBackup("hv9", "web", "real");
      await waitFor(() => a.received.length >= 1, { timeoutMs: 10_000, what: "the alert after the malformed events" });
      await sleep(6_000); // past the retry delay (5 s): a malformed event retried would be refused a second time
      assert.equal(a.received.length, 1);
      assert.match((a.received[0]!.body as { message: string }).message, /Reason: real/);
      const refused = logText.split("\n").filter((l) => l.includes('"msg":"event refused by its contract; dropped"') && l.includes(".hv9."));
      assert.equal(refused.length, bad.length);
      assert.match(refused.join("\n"), /payload type completed on a failed subject/);
      assert.match(refused.join("\n"), /payload host hv1 on a subject of host hv9/);
    } finally {
      await notifier.stop();
      await a.close();
    }
  });

  it("NATS killed (SIGKILL) and restarted: the notifier resumes and an event published afterwards arrives exactly once", async () => {
    const a = await startHttpReceiver();
    const notifier = await start([`json://${a.base}/nats?hosts=hv6`]);
    try {
      await failBackup("hv6", "before", "one");
      await waitFor(() => a.received.length >= 1, { timeoutMs: 15_000, what: "the first alert" });
      await nats.kill();
      await sleep(1_000);
      await nats.start();
      const subject = subjects.evt.backup("hv6", "failed");
      const after = { type: "failed", host: "hv6", domain: "after", runId: "nats-after", at: "t", bytesWritten: 0, durationMs: 1, reason: "two" };
      // The same message id on every try: a publish whose ack was lost is stored once.
      await waitFor(async () => Boolean(await publishJson(nc, subject, after, eventMessageId(subject, after.runId))), { timeoutMs: 20_000, intervalMs: 500, what: "publishing after the restart" });
      await waitFor(() => a.received.length >= 2, { timeoutMs: 30_000, what: "the alert after the restart" });
      await sleep(1_500);
      const reasons = a.received.map((r) => /Reason: (\w+)/.exec((r.body as { message: string }).message)?.[1]);
      assert.deepEqual(reasons, ["one", "two"]);
    } finally {
      await notifier.stop();
      await a.close();
    }
  });
});

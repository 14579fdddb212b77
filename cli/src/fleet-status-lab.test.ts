import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { execa, type ResultPromise } from "execa";
import { chromium, type Browser } from "playwright-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { authFileNames, connectBus, type NatsConnection } from "@vmbs/bus";
import {
  backupEventSchema,
  fleetEventSchema,
  fleetStatusSchema,
  roleId,
  roleInboxPrefix,
  streams,
  subjects,
  type BackupCompleted,
  type BusRole,
  type FleetEvent,
  type FleetStatus,
} from "@vmbs/contracts";
import {
  createLab,
  freePort,
  ignoredListExcept,
  promtoolCheckMetrics,
  startChildAgent,
  startTestPrometheus,
  vmbsProcessEnv,
  waitFor,
  type ChildAgent,
  type Lab,
  type LabDomain,
} from "@vmbs/lab";

/*
 * Issue 16's acceptance test: a fleet of two hosts on one bus — hva all-in-one (`vmbs start`, which runs the bus and
 * the status service) and hvb a bare `vmbs agent` — seen through `vmbs status --json`, the service's own reply, the
 * status page in Chromium and a real Prometheus; then hvb's agent stops (one `silent`) and, with a one-minute RPO,
 * overdue domains raise one `stale` each per episode.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const rpoMs = 60_000;

describe("fleet status of two hosts on one bus: CLI, service, page, Prometheus, silent and stale alarms (real lab)", { timeout: 300_000 }, () => {
  let lab: Lab;
  let stack: ResultPromise | undefined;
  let agentB: ChildAgent | undefined;
  let nc: NatsConnection | undefined;
  let browser: Browser | undefined;
  /** `vmbs` as the operator of the fleet: NATS_URL of hva's server and the operator's credential. */
  let operatorEnv: Record<string, string>;
  let httpUrl: string;
  /** hva's domain backed up by the test, and one defined after hva's agent started, never backed up. */
  let backedUpA: LabDomain;
  let neverBackedUpA: LabDomain;
  let neverBackedUpDefinedAt: number;
  let domainB: LabDomain;
  /** The completed event of each backup the test ran, by domain name. */
  const completedOf = new Map<string, BackupCompleted>();

  const status = async (): Promise<FleetStatus> => {
    const r = await execa("node", [vmbs, "status", "--json"], { env: operatorEnv, reject: false, timeout: 30_000 });
    // 1 = something needs attention (a domain never backed up, a silent host): the reply is printed all the same.
    assert.ok(r.exitCode === 0 || r.exitCode === 1, `vmbs status: exit ${r.exitCode} ${r.stderr}`);
    return fleetStatusSchema.parse(JSON.parse(r.stdout));
  };
  const hostOf = (s: FleetStatus, host: string) => s.hosts.find((h) => h.host === host);
  /** What the views must agree on: each host's liveness and each domain's last good backup. */
  const summary = (s: FleetStatus) => s.hosts.map((h) => ({ host: h.host, alive: h.alive, domains: h.domains.map((d) => ({ domain: d.domain, lastBackup: d.lastBackup })) }));

  /** The fleet alarms VMBS_EVT holds, read as the operator, and the stream's own count per subject. */
  async function storedAlarms(): Promise<{ alarms: FleetEvent[]; perSubject: Record<string, number> }> {
    const filter = subjects.evt.serviceAll("fleet", "*");
    const info = await (await jetstreamManager(nc!)).streams.info(streams.events, { subjects_filter: filter });
    const perSubject = info.state.subjects ?? {};
    const alarms: FleetEvent[] = [];
    if (Object.keys(perSubject).length === 0) return { alarms, perSubject };
    const reader = await jetstream(nc!).consumers.get(streams.events, { filter_subjects: filter });
    for (let m = await reader.next({ expires: 2_000 }); m; m = m.info.pending > 0 ? await reader.next({ expires: 2_000 }) : null) alarms.push(fleetEventSchema.parse(m.json()));
    return { alarms, perSubject };
  }

  before(async () => {
    lab = await createLab();
    const envA = await vmbsProcessEnv(lab, "hva");
    const authDir = join(envA.VMBS_STATE_DIR!, "auth");
    // The fleet's credentials, written where `vmbs start` of hva finds them for the nats-server it runs.
    await execa("node", [vmbs, "auth", "init", "--hosts", "hva,hvb", "--out", authDir], { env: envA, timeout: 30_000 });
    const seedOf = (role: BusRole) => join(authDir, authFileNames.seed(roleId(role)));
    backedUpA = await lab.createDomain({ sizeMiB: 64 });
    domainB = await lab.createDomain({ sizeMiB: 64 });
    const httpListen = `127.0.0.1:${await freePort()}`;
    httpUrl = `http://${httpListen}`;
    const natsUrl = `nats://127.0.0.1:${envA.VMBS_LOCAL_NATS_PORT}`;
    operatorEnv = { ...envA, NATS_URL: natsUrl, NATS_NKEY_SEED: seedOf({ kind: "operator" }) };

    stack = execa("node", [vmbs, "start"], {
      env: {
        ...envA,
        VM_IGNORED_LIST: await ignoredListExcept(lab.uri, [backedUpA.name]),
        VMBS_HTTP_LISTEN: httpListen,
        BACKUP_RPO_MINUTES: String(rpoMs / 60_000),
        // A slot far away: no scheduled backup starts during the test, every domain waits for its RPO.
        BACKUP_SCHEDULE: "0 0 1 1 *",
      },
      reject: false,
      timeout: 300_000,
      forceKillAfterDelay: 10_000,
    });
    // hvb's durables, made by the operator as for any host of a fleet (`vmbs start` makes only its own host's).
    const setup = await waitFor(
      async () => {
        const r = await execa("node", [vmbs, "bus", "setup", "--hosts", "hva,hvb"], { env: operatorEnv, reject: false, timeout: 30_000 });
        return r.exitCode === 0 && r;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: "hva's bus to take `vmbs bus setup`" },
    );
    assert.match(setup.stdout, /streams and buckets ready/);
    // An agent backs up, at its start, every scheduled domain without a chain: a domain to stay never backed up is
    // defined once hva's agent serves (its next heartbeat lists it as scheduled: VM_IGNORED_LIST does not name it),
    // and before hvb's agent starts (whose VM_IGNORED_LIST names it).
    await waitFor(async () => (await readFile(envA.LOGFILE_PATH!, "utf8").catch(() => "")).includes('"backup agent serving"'), {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: "hva's agent to serve",
    });
    neverBackedUpA = await lab.createDomain({ sizeMiB: 64 });
    neverBackedUpDefinedAt = Date.now();
    const stateB = await lab.tempDir("state-hvb-");
    agentB = startChildAgent({
      NATS_URL: natsUrl,
      NATS_NKEY_SEED: seedOf({ kind: "agent", host: "hvb" }),
      HOST_ID: "hvb",
      LOCAL_BACKUP_PATH: await lab.tempDir("backups-hvb-"),
      VMBS_STATE_DIR: stateB,
      LOGFILE_PATH: join(stateB, "vmbs.log"),
      VM_IGNORED_LIST: await ignoredListExcept(lab.uri, [domainB.name]),
      VM_ALLOWED_LIST: lab.allowedList,
    });
    // `vmbs backup` sends nothing to a host without a live agent: wait until hvb's serves.
    await waitFor(async () => (await readFile(join(stateB, "vmbs.log"), "utf8").catch(() => "")).includes('"backup agent serving"'), {
      timeoutMs: 90_000,
      intervalMs: 500,
      what: "hvb's agent to serve",
    });
    nc = await connectBus(natsUrl, "fleet-status-test", { nkeySeed: await readFile(seedOf({ kind: "operator" }), "utf8"), inboxPrefix: roleInboxPrefix({ kind: "operator" }) });
  });
  after(async () => {
    stack?.kill("SIGTERM");
    // Each goes whatever the others do; the lab (domains, folders) last, once nothing uses it.
    await Promise.allSettled([agentB?.kill9(), stack, browser?.close(), nc?.close()]);
    await lab?.cleanup();
  });

  it("both hosts' backups show alike in `vmbs status --json`, the service's reply, the page and Prometheus; promtool is clean", async () => {
    const backup = async (domain: LabDomain, host: string) => {
      const r = await execa("node", [vmbs, "backup", "--domain", domain.name, "--host", host, "--level", "full", "--timeout", "120"], { env: operatorEnv, reject: false, timeout: 150_000 });
      assert.equal(r.exitCode, 0, `${host}: ${r.stderr}`);
      // Chain events of the checks around the backup may come too: the backup's own are those with a runId.
      const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => "runId" in l).map((l) => backupEventSchema.parse(l));
      const done = events.find((e): e is BackupCompleted => e.type === "completed");
      assert.ok(done, `${host}: ${r.stdout}`);
      completedOf.set(domain.name, done);
    };
    await Promise.all([backup(backedUpA, "hva"), backup(domainB, "hvb")]);

    const cli = await waitFor(
      async () => {
        const s = await status();
        const a = hostOf(s, "hva")?.domains.find((d) => d.domain === backedUpA.name);
        const b = hostOf(s, "hvb")?.domains.find((d) => d.domain === domainB.name);
        const seen = hostOf(s, "hva")?.domains.some((d) => d.domain === neverBackedUpA.name && d.scheduled);
        return a?.lastBackup && b?.lastBackup && seen && hostOf(s, "hva")?.alive && hostOf(s, "hvb")?.alive ? s : undefined;
      },
      // The status service reads the heartbeats every 10 s, and hva's agent beats every 30 s.
      { timeoutMs: 60_000, intervalMs: 1_000, what: "both hosts alive, both backups and the new domain in `vmbs status --json`" },
    );
    const hva = hostOf(cli, "hva")!;
    const hvb = hostOf(cli, "hvb")!;
    // Each host lists every domain of the (shared) libvirt, but schedules only its own (VM_IGNORED_LIST).
    const scheduledOn = (host: typeof hva, domain: LabDomain) => host.domains.find((d) => d.domain === domain.name)?.scheduled;
    assert.deepEqual(
      [backedUpA, neverBackedUpA, domainB].map((d) => [d.name, scheduledOn(hva, d), scheduledOn(hvb, d)]),
      [
        [backedUpA.name, true, false],
        [neverBackedUpA.name, true, false],
        [domainB.name, false, true],
      ],
    );
    for (const [host, domain] of [[hva, backedUpA], [hvb, domainB]] as const) {
      const shown = host.domains.find((d) => d.domain === domain.name)!;
      const done = completedOf.get(domain.name)!;
      assert.deepEqual([shown.lastBackup?.at, shown.lastBackup?.level, shown.lastBackup?.bytesWritten], [done.at, "full", done.bytesWritten], `${host.host}/${domain.name}`);
    }
    assert.equal(hva.domains.find((d) => d.domain === neverBackedUpA.name)?.lastBackup, null);

    // The service's own reply, asked on the bus as `nats req vmbs.svc.status.fleet '{}'` would.
    const reply = await nc!.request(subjects.svc.statusEndpoint("fleet"), "{}", { timeout: 10_000 });
    assert.deepEqual(summary(fleetStatusSchema.parse(reply.json())), summary(cli));

    // The page in Chromium: a row per domain of both hosts, the backed-up ones with their level.
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], timeout: 30_000 });
    const page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(err.message));
    await page.goto(httpUrl);
    const rows = page.locator("tr.domain");
    const table = await waitFor(
      async () => {
        const cells = await Promise.all((await rows.all()).map((row) => row.locator("td").allTextContents()));
        return cells.length >= 3 && cells;
      },
      { what: "the domain rows on the page" },
    );
    const row = (host: string, domain: LabDomain) => table.find((c) => c[0] === host && c[1] === domain.name)?.[5];
    assert.deepEqual([row("hva", backedUpA), row("hva", neverBackedUpA), row("hvb", domainB)], ["full", "", "full"]);
    assert.deepEqual(problems, [], "no script error on the page");

    const body = await (await fetch(`${httpUrl}/metrics`)).text();
    const check = await promtoolCheckMetrics(body);
    assert.deepEqual([check.code, check.output], [0, ""], body);
    const prometheus = await startTestPrometheus(await lab.tempDir("prometheus-"), new URL(httpUrl).host);
    try {
      const samples = await waitFor(
        async () => {
          const all = await prometheus.query("vmbs_backup_last_success_timestamp_seconds");
          const ours = all.filter((s) => s.metric.domain === backedUpA.name || s.metric.domain === domainB.name);
          return ours.length === 2 && ours;
        },
        { timeoutMs: 30_000, intervalMs: 500, what: "both domains in Prometheus" },
      );
      const values = Object.fromEntries(samples.map((s) => [`${s.metric.host}/${s.metric.domain}`, Number(s.value[1])]));
      assert.deepEqual(values, {
        [`hva/${backedUpA.name}`]: Date.parse(completedOf.get(backedUpA.name)!.at) / 1000,
        [`hvb/${domainB.name}`]: Date.parse(completedOf.get(domainB.name)!.at) / 1000,
      });
    } finally {
      await prometheus.stop();
    }
  });

  it("hvb's agent stops: hvb is not alive within 90 s, and exactly one `silent` is stored", async (t) => {
    const stoppedAt = Date.now();
    await agentB!.stop();
    const silent = await waitFor(
      async () => {
        const s = await status();
        return hostOf(s, "hvb")?.alive === false && s;
      },
      { timeoutMs: 90_000, intervalMs: 2_000, what: "hvb not alive" },
    );
    const silentAfterMs = Date.now() - stoppedAt;
    t.diagnostic(`hvb not alive ${silentAfterMs} ms after its agent stopped`);
    assert.ok(silentAfterMs <= 90_000, `hvb seen silent after ${silentAfterMs} ms`);
    assert.equal(hostOf(silent, "hva")?.alive, true, "hva heart-beats on");
    assert.ok(hostOf(silent, "hvb")!.domains.find((d) => d.domain === domainB.name)?.attention.some((a) => a.startsWith("host silent since")));
    await waitFor(async () => (await storedAlarms()).alarms.some((a) => a.type === "silent"), { timeoutMs: 30_000, intervalMs: 1_000, what: "the silent alarm in VMBS_EVT" });
    // Polls go on every 10 s: two more of them must not raise it again.
    await sleep(20_000);
    const { alarms, perSubject } = await storedAlarms();
    assert.equal(perSubject[subjects.evt.fleet("hvb", "silent")], 1);
    const silentAlarms = alarms.filter((a) => a.type === "silent");
    assert.deepEqual(silentAlarms.map((a) => [a.host, a.lastHeartbeatAt]), [["hvb", hostOf(silent, "hvb")!.lastSeen]]);
    assert.equal(perSubject[subjects.evt.fleet("hva", "silent")], undefined);
    assert.deepEqual(alarms.filter((a) => a.type === "back"), [], "no host came back");
  });

  it("BACKUP_RPO_MINUTES=1: each overdue domain raises exactly one `stale` per episode, none before its minute is up", async (t) => {
    const neverSeen = await waitFor(
      async () => (await storedAlarms()).alarms.find((a) => a.type === "stale" && a.domain === neverBackedUpA.name),
      // Seen scheduled at hva's next heartbeat (≤ 30 s) and status poll (≤ 10 s), overdue a minute later.
      { timeoutMs: Math.max(0, neverBackedUpDefinedAt + 110_000 - Date.now()), intervalMs: 1_000, what: `the stale alarm of ${neverBackedUpA.name} within 110 s of its definition` },
    );
    assert.ok(neverSeen.type === "stale" && neverSeen.lastCompletedAt === undefined && /never backed up/.test(neverSeen.reason), neverSeen.reason);
    const { alarms, perSubject } = await storedAlarms();
    const stale = alarms.filter((a) => a.type === "stale");
    assert.equal(stale.length, (perSubject[subjects.evt.fleet("hva", "stale")] ?? 0) + (perSubject[subjects.evt.fleet("hvb", "stale")] ?? 0));
    const episodes = stale.map((a) => `${a.host}/${a.domain}/${a.since}`);
    t.diagnostic(`stale alarms (host/domain/since): ${episodes.join(", ")}`);
    assert.equal(new Set(episodes).size, episodes.length, "one alarm per domain and episode");
    assert.equal(stale.filter((a) => a.domain === neverBackedUpA.name).length, 1);
    for (const a of stale) {
      assert.ok(Date.parse(a.at) - Date.parse(a.since) > rpoMs, `${a.domain}: raised ${a.at}, waiting since ${a.since}`);
      // A backed-up domain's episode begins with its backup; it never raises one for the time before.
      const done = completedOf.get(a.domain);
      if (done) assert.deepEqual([a.since, a.lastCompletedAt], [done.at, done.at], a.domain);
    }
  });
});

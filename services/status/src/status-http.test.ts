import { after, before, describe, it } from "node:test";
import { uniformFleetPolicy } from "./fleet-policy.js";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { publishJson, type NatsConnection } from "@vmbs/bus";
import { subjects } from "@vmbs/contracts";
import { promtoolCheckMetrics, startRoleBus, startTestPrometheus, testLogger, waitFor, type RoleBus, type TestPrometheus } from "@vmbs/lab";
import { startStatusService, type StatusService } from "./status-service.js";

// The status page, /api and /metrics on a real listener, fed by real events on a nats-server with the generated
// roles, read by a real headless Chromium and a real Prometheus (Debian packages installed by scripts/setup.sh).
const MiB = 1024 * 1024;
/** Markup in a domain name the contract allows (no '/'): the page must show it as text. */
const markupDomain = "<img src=x onerror=alert(1)>";
const artifactsDir = fileURLToPath(new URL("../../../test-artifacts/", import.meta.url));

describe("status page, /api and /metrics over HTTP, read by Chromium and Prometheus", () => {
  let bus: RoleBus;
  let agent1: NatsConnection;
  let agent2: NatsConnection;
  let mirror2: NatsConnection;
  let service: StatusService;
  let url: string;
  let browser: Browser | undefined;
  let prometheus: TestPrometheus | undefined;
  let dir: string;
  /** The `at` of each domain's last completed backup, as published ("host/domain" → Unix seconds). */
  const lastSuccess = new Map<string, number>();
  let runs = 0;

  const ago = (minutes: number): string => new Date(Date.now() - minutes * 60_000).toISOString();
  const completed = async (nc: NatsConnection, host: string, domain: string, level: "full" | "inc", bytesWritten: number, durationMs: number, at: string): Promise<void> => {
    const checkpoint = `virtnbdbackup.${level === "full" ? 0 : 1}`;
    await publishJson(nc, subjects.evt.backup(host, "completed"), { type: "completed", host, domain, runId: `r${++runs}`, level, checkpoint, bytesWritten, durationMs, folder: domain, at });
    lastSuccess.set(`${host}/${domain}`, Date.parse(at) / 1000);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmbs-status-http-"));
    bus = await startRoleBus(["hv1", "hv2"]);
    [agent1, agent2, mirror2] = await Promise.all([bus.connect({ kind: "agent", host: "hv1" }), bus.connect({ kind: "agent", host: "hv2" }), bus.connect({ kind: "mirror", host: "hv2" })]);
    await bus.beat(agent1, "hv1", [
      { name: "web", state: "running", scheduled: true },
      { name: markupDomain, state: "shut off", scheduled: false },
    ]);
    await bus.beat(agent2, "hv2", [{ name: "db", state: "running", scheduled: true }]);
    await completed(agent1, "hv1", "web", "full", 40 * MiB, 20_000, ago(180));
    await completed(agent1, "hv1", "web", "inc", 3 * MiB, 4_000, ago(120));
    await publishJson(agent1, subjects.evt.backup("hv1", "failed"), { type: "failed", host: "hv1", domain: "web", runId: `r${++runs}`, level: "inc", reason: "disk full", at: ago(60) });
    await completed(agent1, "hv1", markupDomain, "full", 1 * MiB, 1_000, ago(50));
    await completed(agent2, "hv2", "db", "full", 50 * MiB, 60_000, ago(90));
    await publishJson(mirror2, subjects.evt.mirror("hv2", "completed"), { type: "completed", host: "hv2", domain: "db", runId: "m1", trigger: "backup", target: "/srv/mirror", at: ago(85), bytesTransferred: 50 * MiB, durationMs: 9_000 });

    const policy = uniformFleetPolicy({ rpoSeconds: 24 * 3600, silentAfterMs: 60_000, nextRun: () => null });
    service = await startStatusService({ nc: await bus.connect({ kind: "status" }), policy, logger: testLogger("status"), pollMs: 200, listen: { host: "127.0.0.1", port: 0 } });
    url = service.httpUrl!;
    await waitFor(
      () => {
        const domains = service.fleet().hosts.flatMap((h) => h.domains);
        return domains.length === 3 && domains.every((d) => d.lastBackup) && domains.some((d) => d.mirror?.state === "in-sync") && service.history("hv1", "web").runs.length === 3;
      },
      { timeoutMs: 10_000, what: "every event and heartbeat in the status" },
    );
  });
  after(async () => {
    await browser?.close();
    await prometheus?.stop();
    await service?.stop();
    await bus?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("HTTP edges: read only, unknown paths, refused parameters, filters", async () => {
    const post = await fetch(`${url}/api/fleet`, { method: "POST", body: "{}" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.equal((await fetch(`${url}/nope`)).status, 404);
    const bad = await fetch(`${url}/api/history?host=../x&domain=web`);
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get("content-type") ?? "", /^application\/json/);
    assert.match(((await bad.json()) as { error: string }).error, /host must be a host id/);
    const hv1 = (await (await fetch(`${url}/api/fleet?host=hv1`)).json()) as { hosts: { host: string; domains: { domain: string }[] }[] };
    assert.deepEqual(
      hv1.hosts.map((h) => [h.host, h.domains.map((d) => d.domain).sort()]),
      [["hv1", [markupDomain, "web"].sort()]],
    );
  });

  it("the page in Chromium: every host and domain, a domain's history chart, names as text, live updates, same origin only", async (t) => {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], timeout: 30_000 });
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    page.setDefaultTimeout(10_000);
    const requested: string[] = [];
    const problems: string[] = [];
    page.on("request", (r) => requested.push(r.url()));
    page.on("pageerror", (err) => problems.push(err.message));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    page.on("response", (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(url);
    const rows = page.locator("tr.domain");
    /** The table's domain rows, each as its cells' texts. */
    const table = async (): Promise<string[][]> => Promise.all((await rows.all()).map((row) => row.locator("td").allTextContents()));
    const cells = await waitFor(async () => {
      const t = await table();
      return t.length === 3 && t;
    }, { what: "three domain rows" });
    assert.deepEqual(cells.map((c) => [c[0], c[1]]).sort(), [["hv1", markupDomain], ["hv1", "web"], ["hv2", "db"]].sort());
    const db = cells.find((c) => c[1] === "db")!;
    assert.deepEqual([db[5], db[6]], ["full", "50.0 MiB"]);
    assert.match(db[9] ?? "", /^in-sync \(/);

    // Markup in a name stays text, in the table and in the history title.
    const title = page.locator("#history-title");
    assert.equal(await page.locator("img").count(), 0, "no element made from a domain name");
    await rows.filter({ hasText: markupDomain }).click();
    await waitFor(async () => (await title.textContent())?.startsWith(`${markupDomain} on hv1`), { what: "the history title" });
    assert.equal(await page.locator("img").count(), 0);

    // A domain's history: one bar per run, the failed one marked.
    await rows.filter({ hasText: "web" }).click();
    await waitFor(async () => (await title.textContent())?.startsWith("web on hv1: last 3 runs"), { what: "web's history" });
    assert.equal(await page.locator("#chart rect.bar").count(), 3);
    assert.equal(await page.locator("#chart rect.bar.failed").count(), 1);

    // A new backup shows without a reload (the page reads /api/fleet every 5 s).
    await completed(agent2, "hv2", "db", "inc", 2 * MiB, 5_000, new Date().toISOString());
    await waitFor(
      async () => {
        const row = (await table()).find((c) => c[1] === "db");
        return row?.[5] === "inc" && row[6] === "2.0 MiB";
      },
      { timeoutMs: 10_000, intervalMs: 250, what: "db's new backup on the page" },
    );

    await mkdir(artifactsDir, { recursive: true });
    const screenshot = join(artifactsDir, "status-page.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);

    const origin = new URL(url).origin;
    assert.deepEqual(requested.filter((r) => new URL(r).origin !== origin), [], "every request to the page's own origin");
    assert.deepEqual(problems, [], "no script error nor refused resource");
  });

  it("Prometheus scrapes /metrics: last successes of both domains; promtool finds nothing to say", { timeout: 60_000 }, async () => {
    const body = await (await fetch(`${url}/metrics`)).text();
    const check = await promtoolCheckMetrics(body);
    assert.deepEqual([check.code, check.output], [0, ""], body);

    prometheus = await startTestPrometheus(dir, new URL(url).host);
    const samples = await waitFor(
      async () => {
        const seen = (await prometheus!.query("vmbs_backup_last_success_timestamp_seconds")).filter((s) => s.metric.domain === "web" || s.metric.domain === "db");
        return seen.length === 2 && seen;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `both domains in Prometheus (its log: ${prometheus.log()})` },
    );
    const values = Object.fromEntries(samples.map((s) => [`${s.metric.host}/${s.metric.domain}`, Number(s.value[1])]));
    assert.deepEqual(Object.keys(values).sort(), ["hv1/web", "hv2/db"]);
    for (const key of ["hv1/web", "hv2/db"]) assert.ok(Math.abs(values[key]! - lastSuccess.get(key)!) < 0.001, `${key}: ${values[key]} vs ${lastSuccess.get(key)}`);
  });
});

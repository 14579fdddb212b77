import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promtoolCheckRules } from "@vmbs/lab";
import { createFleetMetrics } from "./fleet-metrics.js";
import { domainRecordOf, emptyFleet, hostRecordOf } from "./fleet-records.js";
import type { FleetPolicy } from "./fleet-policy.js";

// grafana/vmbs-fleet.json, the dashboard the README tells to import, over the status service's /metrics.
const dashboardFile = new URL("../../../grafana/vmbs-fleet.json", import.meta.url);

interface Dashboard {
  templating: { list: { name: string; query: { query: string } }[] };
  panels: { id: number; title: string; targets: { refId: string; expr: string }[] }[];
}

/** Every series name /metrics serves, scraped from the status service's own registry with every metric set. */
async function servedSeriesNames(): Promise<Set<string>> {
  const at = new Date().toISOString();
  const policy: FleetPolicy = { rpoSeconds: 3600, silentAfterMs: 65_000, nextRun: () => null };
  const fleet = emptyFleet();
  const host = hostRecordOf(fleet, "hv1");
  host.lastSeen = at;
  host.domains = [{ name: "web", state: "running", scheduled: true }];
  const web = domainRecordOf(fleet, "hv1", "web");
  web.lastBackup = { at, level: "full", checkpoint: "virtnbdbackup.0", bytesWritten: 4096, durationMs: 2_000 };
  web.runCounts = { "full/completed": 1 };
  web.bytesTotal = 4096;
  web.mirror = { state: "in-sync", at, lastSyncAt: at, target: "/srv/mirror" };
  const metrics = createFleetMetrics(fleet, policy);
  metrics.observeRun("hv1", "full", 2_000);
  const names = (await metrics.registry.metrics())
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => /^[A-Za-z_:][\w:]*/.exec(line)![0]);
  return new Set(names);
}

const keywords = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"]);

/** The metric names a PromQL expression selects: names that are not functions, keywords, labels or strings. */
function metricNamesOf(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  return [...bare.matchAll(/(?<![\w.])[A-Za-z_:][\w:]*/g)]
    .filter((m) => !keywords.has(m[0]) && !bare.slice(m.index + m[0].length).trimStart().startsWith("("))
    .map((m) => m[0]);
}

/** Grafana's template variables (`$host`, `${host}`) replaced by a value they may take, as Grafana does before it asks. */
function expand(expr: string, variables: ReadonlySet<string>): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (_, name: string) => {
    if (!variables.has(name)) throw new Error(`${JSON.stringify(expr)} uses $${name}, which the dashboard does not define`);
    return ".*";
  });
}

describe("the Grafana dashboard (grafana/vmbs-fleet.json)", () => {
  it("parses, and every query selects only series the status service serves, each of its metrics in some panel", async () => {
    const dashboard = JSON.parse(await readFile(dashboardFile, "utf8")) as Dashboard;
    const served = await servedSeriesNames();
    assert.ok(served.has("vmbs_backup_duration_seconds_bucket") && served.has("vmbs_host_up"), [...served].join(", "));
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr })));
    exprs.push(...dashboard.templating.list.map((v) => ({ where: `variable ${v.name}`, expr: v.query.query.replace(/^label_values\((.*),\s*\w+\)$/, "$1") })));
    assert.ok(exprs.length >= 10, `${exprs.length} queries`);
    const used = new Set<string>();
    for (const { where, expr } of exprs) {
      const names = metricNamesOf(expr);
      assert.ok(names.length > 0, `${where}: ${expr} selects no metric`);
      for (const name of names) {
        assert.ok(served.has(name), `${where}: ${name} is not served by /metrics (${expr})`);
        used.add(name);
      }
    }
    const families = new Set([...served].map((n) => n.replace(/_(bucket|sum|count)$/, "")));
    const unused = [...families].filter((family) => ![...used].some((n) => n.replace(/_(bucket|sum|count)$/, "") === family));
    assert.deepEqual(unused, [], "every metric /metrics serves is on the dashboard");
    // The check itself sees a wrong name and skips labels, strings and functions.
    assert.deepEqual(metricNamesOf('sum by (host) (rate(vmbs_nope_total{host=~"a|b"}[5m])) / on (host) up'), ["vmbs_nope_total", "up"]);
  });

  it("every query is valid PromQL to promtool (as recording rules), and promtool does refuse a broken one", async () => {
    const dashboard = JSON.parse(await readFile(dashboardFile, "utf8")) as Dashboard;
    const variables = new Set(dashboard.templating.list.map((v) => v.name));
    const rules = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ record: `vmbs_dashboard:panel_${p.id}_${t.refId}`, expr: expand(t.expr, variables) })));
    const dir = await mkdtemp(join(tmpdir(), "vmbs-grafana-"));
    try {
      // JSON is YAML: the rules file as promtool reads it.
      const file = join(dir, "dashboard-rules.yml");
      await writeFile(file, JSON.stringify({ groups: [{ name: "vmbs-fleet-dashboard", rules }] }));
      const check = await promtoolCheckRules(file);
      assert.equal(check.code, 0, check.output);
      assert.match(check.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
      await writeFile(file, JSON.stringify({ groups: [{ name: "broken", rules: [{ record: "vmbs_dashboard:broken", expr: "sum(vmbs_host_up" }] }] }));
      assert.notEqual((await promtoolCheckRules(file)).code, 0, "a broken expression is refused");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

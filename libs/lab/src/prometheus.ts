import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { freePort } from "./process-env.js";

/** One sample of an instant query's answer. */
export interface PrometheusSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A real Prometheus server (Debian's `prometheus`) scraping one target. */
export interface TestPrometheus {
  /** The answer of an instant query. */
  query(expr: string): Promise<PrometheusSample[]>;
  /** The end of its log, for a timeout message. */
  log(): string;
  stop(): Promise<void>;
}

/** Starts Prometheus with its config and data in `dir`, scraping `target` (host:port, path /metrics) every second. */
export async function startTestPrometheus(dir: string, target: string): Promise<TestPrometheus> {
  const port = await freePort();
  const config = join(dir, "prometheus.yml");
  await writeFile(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: vmbs\n    static_configs:\n      - targets: ["${target}"]\n`);
  const proc = execa("/usr/bin/prometheus", [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "tsdb")}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdin: "ignore",
    stdout: "ignore",
    reject: false,
    // A guard: a test that forgets to stop it does not leave it behind.
    timeout: 300_000,
    forceKillAfterDelay: 5_000,
  });
  let log = "";
  proc.stderr.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  return {
    async query(expr) {
      const r = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { data: { result: PrometheusSample[] } };
      return r.data.result;
    },
    log: () => log,
    async stop() {
      proc.kill("SIGTERM");
      await proc;
    },
  };
}

/** `promtool check metrics` of a /metrics body: its exit code and everything it said (nothing when clean). */
export async function promtoolCheckMetrics(body: string): Promise<{ code: number | undefined; output: string }> {
  const r = await execa("/usr/bin/promtool", ["check", "metrics"], { input: body, all: true, reject: false, timeout: 20_000 });
  return { code: r.exitCode, output: r.all.trim() };
}

/** `promtool check rules` of a rules file: its exit code and everything it said. */
export async function promtoolCheckRules(file: string): Promise<{ code: number | undefined; output: string }> {
  const r = await execa("/usr/bin/promtool", ["check", "rules", file], { all: true, reject: false, timeout: 20_000 });
  return { code: r.exitCode, output: r.all.trim() };
}

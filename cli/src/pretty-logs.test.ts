import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { runOnPty, startTestNats, type TestNats } from "@vmbs/lab";

// test lane: independent (runs the CLI, never libvirt: no agent, no `vmbs start`)

/* A service's log as a person sees it on a terminal, as a supervisor gets it through a pipe, and in LOGFILE_PATH. */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

describe("service logs: lines on a terminal, JSON otherwise and in LOGFILE_PATH", () => {
  let nats: TestNats;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    nats = await startTestNats();
    dir = await mkdtemp(join(tmpdir(), "vmbs-logs-"));
    env = { ...process.env, NATS_URL: nats.url, HOST_ID: "logs", VMBS_STATE_DIR: dir, LOGFILE_PATH: join(dir, "vmbs.log"), NO_COLOR: "1" } as Record<string, string>;
  });
  after(async () => {
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("prints lines a person reads on a terminal and keeps JSON in the log file", async () => {
    const r = await runOnPty("node", [vmbs, "scheduler"], env, [[/schedule started/, "\x03"]]);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: connected to NATS \{"url":"nats:\/\/127\.0\.0\.1:\d+","role":"scheduler"\}\r?$/m);
    assert.doesNotMatch(r.out, /^\{"level"/m, "no JSON on the terminal");
    const lines = (await readFile(env.LOGFILE_PATH!, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { msg: string; role?: string });
    assert.ok(lines.some((l) => l.msg === "connected to NATS" && l.role === "scheduler"), "the file has the same line as JSON");
  });

  it("writes JSON lines when stdout is not a terminal", async () => {
    const run = execa("node", [vmbs, "scheduler"], { env, reject: false, forceKillAfterDelay: false });
    let out = "";
    run.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("connected to NATS")) run.kill("SIGTERM");
    });
    const r = await run;
    assert.equal(r.exitCode, 0, r.stderr);
    const first = JSON.parse(out.split("\n")[0]!) as { level: number; msg: string };
    assert.deepEqual([first.level, first.msg], [30, "connected to NATS"]);
  });
});

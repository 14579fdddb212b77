import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectBus, openBucket, publishJson, type NatsConnection } from "@vmbs/bus";
import { buckets, eventMessageId, streams, subjects, type ChainEvent, type MirrorEventInput } from "@vmbs/contracts";
import { loadConfig } from "@vmbs/config";
import { freePort, hashTree, runOnPty, startTestNats, waitFor, type TestNats } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { startMirror } from "@vmbs/mirror";

// test lane: independent (runs the CLI, never libvirt: no agent, no `vmbs start`)

/*
 * The one-shot commands without the `nats` CLI, against a real nats-server: what they do when nobody answers
 * (no agent, an agent that goes away, a wait longer than --timeout, no server at all), and `vmbs events`.
 * The commands' work on a real agent: vmbs-host-commands-lab.test.ts.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "h1";

describe("vmbs host commands and events, without the nats CLI", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  let env: Record<string, string>;
  let stateDir: string;
  before(async () => {
    nats = await startTestNats();
    stateDir = await mkdtemp(join(tmpdir(), "vmbs-cli-state-"));
    env = { ...process.env, NATS_URL: nats.url, HOST_ID: host, VMBS_STATE_DIR: stateDir, NO_COLOR: "1" } as Record<string, string>;
    const setup = await execa("node", [vmbs, "bus", "setup", "--hosts", `${host},h2`], { env, reject: false });
    assert.equal(setup.exitCode, 0, setup.stderr);
    nc = await connectBus(nats.url, "test");
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  /** Holds the presence key of `host` as a live agent does, until the returned function is called. */
  async function holdPresence(): Promise<() => Promise<void>> {
    const { kv } = await openBucket(nc, buckets.agentPresence);
    const put = () => kv.put(host, JSON.stringify({ host, hostname: "test", pid: process.pid, since: new Date().toISOString() }));
    await put();
    const renew = setInterval(() => void put(), 3_000);
    return async () => {
      clearInterval(renew);
      await kv.delete(host);
    };
  }

  const storedCommands = async (): Promise<number> => (await (await jetstreamManager(nc)).streams.info(streams.commands)).state.messages;

  it("tells at once that the host has no live agent, and sends nothing", async () => {
    const before = await storedCommands();
    for (const args of [["backup", "--domain", "web"], ["backup", "--all"], ["check"], ["rotate", "--domain", "web"], ["retention"]]) {
      const started = Date.now();
      const r = await execa("node", [vmbs, ...args], { env, reject: false });
      assert.equal(r.exitCode, 69, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^vmbs \w+: host h1 has no live agent \(nothing holds vmbs_agent_presence h1\); nothing was sent — [^\n]*$/);
      assert.ok(Date.now() - started < 10_000, "at once, not after a timeout");
    }
    assert.equal(await storedCommands(), before, "no command was queued for an absent agent");
  });

  it("retention --dry-run: no agent and no mirror are each told at once, and nothing is sent", async () => {
    const before = await storedCommands();
    const r = await execa("node", [vmbs, "retention", "--dry-run"], { env, reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 69, r.stderr);
    assert.match(r.stderr, /^vmbs retention: dry run — nothing is deleted or archived, locally or on the mirror$/m);
    assert.match(r.stderr, /^vmbs retention: host h1 has no live agent/m);
    assert.match(r.stderr, /^vmbs retention: host h1 runs no mirror now \(nothing takes vmbs\.cmd\.mirror\.h1\): no mirror plan$/m);
    assert.equal(await storedCommands(), before, "neither part was queued");
  });

  it("retention --dry-run asks a running mirror for its plan and prints it; the mirror target stays byte for byte the same", async () => {
    const root = await mkdtemp(join(tmpdir(), "vmbs-dry-root-"));
    const target = await mkdtemp(join(tmpdir(), "vmbs-dry-mirror-"));
    for (const [dir, mtimeS] of [[join(root, "web"), 1_760_100_000], [join(target, "web"), 1_760_000_000]] as const) {
      await mkdir(dir);
      await writeFile(join(dir, "web.cpt"), '["virtnbdbackup.0"]');
      await writeFile(join(dir, "vda.full.data"), "data");
      await utimes(join(dir, "vda.full.data"), mtimeS, mtimeS);
    }
    const config = loadConfig({ NATS_URL: nats.url, HOST_ID: host, LOCAL_BACKUP_PATH: root, RSYNC_BACKUP_PATH: target, VMBS_STATE_DIR: stateDir, TZ: "UTC" });
    const mirror = await startMirror({ config, nc, logger: createLogger({ name: "test", level: "silent" }), catchUpAtStart: false });
    const release = await holdPresence();
    try {
      const before = await hashTree(target);
      // The agent part: a live presence but no agent behind it, so it times out (exit 1); the mirror part answers.
      const r = await execa("node", [vmbs, "retention", "--dry-run", "--domain", "web", "--timeout", "8", "--json"], { env, reject: false, timeout: 60_000 });
      const planned = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as MirrorEventInput & { subject?: string }).filter((e) => e.type === "planned");
      assert.equal(planned.length, 1, `${r.stderr}${r.stdout}`);
      assert.equal(planned[0]!.domain, "web");
      assert.equal(planned[0]!.wouldArchiveTo, "web.2025-10-09+08:53:20.0000000000", "the copy holds another chain than the local folder");
      assert.match(r.stderr, /mirror dry run stored in VMBS_CMD #\d+; waiting for the mirror of host h1/);
      assert.equal(r.exitCode, 1, "the agent part timed out");
      assert.deepEqual(await hashTree(target), before, "the mirror target is unchanged");
      assert.deepEqual((await readdir(target)).sort(), ["web"]);
    } finally {
      await release();
      await mirror.stop();
      await rm(root, { recursive: true, force: true });
      await rm(target, { recursive: true, force: true });
    }
  });

  it("vmbs drill tells at once that the host has no restore service, and sends nothing", async () => {
    const before = await storedCommands();
    const r = await execa("node", [vmbs, "drill", "--domain", "web"], { env, reject: false });
    assert.equal(r.exitCode, 69, r.stderr);
    assert.match(r.stderr, /^vmbs drill: no restore service of host h1 answers \(NATS micro service vmbs-restore\); nothing was sent — [^\n]*$/);
    assert.equal(await storedCommands(), before);
  });

  it("--timeout bounds the whole wait, also while events keep coming", async () => {
    const release = await holdPresence();
    // A stand-in for a busy agent: answers the command with a chain event every 300 ms and never finishes.
    const commands = nc.subscribe(subjects.cmd.check(host), { max: 1 });
    let ticker: NodeJS.Timeout | undefined;
    void (async () => {
      for await (const m of commands) {
        const { requestId } = m.json<{ requestId: string }>();
        let n = 0;
        ticker = setInterval(() => {
          const subject = subjects.evt.chain(host, "checked");
          const event: ChainEvent = { type: "checked", host, domain: "web", requestId, trigger: "command", plan: "keep", reason: `still checking (${n})`, at: new Date().toISOString() };
          void publishJson(nc, subject, event, eventMessageId(subject, `tick-${requestId}-${n++}`));
        }, 300);
      }
    })();
    try {
      const started = Date.now();
      const r = await execa("node", [vmbs, "check", "--domain", "web", "--timeout", "3", "--json"], { env, reject: false });
      const took = Date.now() - started;
      assert.equal(r.exitCode, 1, r.stderr);
      assert.match(r.stderr, /vmbs check: no outcome within 3 s; the command may still run on h1/);
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as ChainEvent);
      assert.ok(lines.length >= 3, `the events that came were printed: ${r.stdout}`);
      assert.ok(lines.every((e) => e.type === "checked" && e.domain === "web"));
      assert.ok(took < 8_000, `the wait ended at the timeout, not after the last event (${took} ms)`);
    } finally {
      clearInterval(ticker);
      await release();
    }
  });

  it("vmbs mirror: --timeout bounds the whole wait too", async () => {
    // A stand-in for a mirror that keeps starting syncs for the command and never ends one.
    const commands = nc.subscribe(subjects.cmd.mirror(host), { max: 1 });
    let ticker: NodeJS.Timeout | undefined;
    void (async () => {
      for await (const m of commands) {
        const { requestId } = m.json<{ requestId: string }>();
        let n = 0;
        ticker = setInterval(() => {
          const subject = subjects.evt.mirror(host, "started");
          const event: MirrorEventInput = { type: "started", host, domain: `d${n}`, requestId, runId: `run-${n}`, trigger: "command", target: "/mnt/mirror", at: new Date().toISOString() };
          void publishJson(nc, subject, event, eventMessageId(subject, `${requestId}-${n++}`));
        }, 300);
      }
    })();
    try {
      const started = Date.now();
      const r = await execa("node", [vmbs, "mirror", "--timeout", "2"], { env, reject: false });
      assert.equal(r.exitCode, 1, r.stderr);
      assert.match(r.stderr, /vmbs mirror: no outcome within 2 s; the sync may still run on h1/);
      assert.ok(Date.now() - started < 7_000, "the wait ended at the timeout");
    } finally {
      clearInterval(ticker);
    }
  });

  it("ends the wait when the agent goes away", async () => {
    const release = await holdPresence();
    const run = execa("node", [vmbs, "rotate", "--domain", "web", "--timeout", "120"], { env, reject: false });
    let stderr = "";
    run.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    await waitFor(() => stderr.includes("command stored in VMBS_CMD") || run.exitCode !== null, { timeoutMs: 10_000, intervalMs: 100, what: "the rotate command to be stored" });
    await release();
    const r = await run;
    assert.equal(r.exitCode, 69, r.stderr);
    assert.match(stderr, /the agent of h1 went away before the command was done; it stays queued/);
  });

  it("every client command says in one line that NATS is unreachable, exit 69", async () => {
    const offline = { ...env, NATS_URL: `nats://127.0.0.1:${await freePort()}` };
    const commands = [
      ["status"],
      ["backup", "--domain", "web"],
      ["backup", "--all"],
      ["check"],
      ["rotate"],
      ["retention", "--domain", "web"],
      ["drill"],
      ["events"],
      ["mirror"],
      ["restore", "--domain", "web", "--list"],
      ["replicate", "--domain", "web", "--as", "web2"],
      ["bus", "setup"],
    ];
    for (const args of commands) {
      const r = await execa("node", [vmbs, ...args], { env: offline, reject: false, stdin: "ignore" });
      assert.equal(r.exitCode, 69, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.split("\n").filter(Boolean);
      assert.equal(lines.length, 1, `${args.join(" ")}: one line, got ${r.stderr}`);
      assert.match(lines[0]!, /^vmbs [a-z ]+: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+ \(connection refused\) — start nats-server there or correct NATS_URL$/);
      assert.equal(r.stdout, "");
    }
  });

  describe("vmbs events", () => {
    const published: { subject: string; event: ChainEvent }[] = [];
    const publishChain = async (h: string, domain: string, type: ChainEvent["type"], reason: string) => {
      const subject = subjects.evt.chain(h, type);
      const event: ChainEvent = { type, host: h, domain, trigger: "command", reason, at: new Date().toISOString() };
      await publishJson(nc, subject, event, eventMessageId(subject, `${h}-${domain}-${published.length}`));
      published.push({ subject, event });
    };
    before(async () => {
      await jetstreamManager(nc).then((jsm) => jsm.streams.purge(streams.events));
      await publishChain(host, "web", "checked", "the chain is whole");
      await publishChain("h2", "db", "attention", "a foreign checkpoint: remove it");
      await publishChain(host, "web", "archived", "rotated on request");
    });

    it("prints the history as JSON lines when stdout is not a terminal, and --host filters", async () => {
      const all = await execa("node", [vmbs, "events"], { env, reject: false });
      assert.equal(all.exitCode, 0, all.stderr);
      const lines = all.stdout.trim().split("\n").map((l) => JSON.parse(l) as { subject: string; seq: number; event: ChainEvent });
      assert.deepEqual(lines.map((l) => [l.subject, l.event.reason]), published.map((p) => [p.subject, p.event.reason]));
      const h2 = await execa("node", [vmbs, "events", "--host", "h2"], { env, reject: false });
      assert.deepEqual(h2.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { event: ChainEvent }).event.domain), ["db"]);
      const recent = await execa("node", [vmbs, "events", "--since", "0s"], { env, reject: false });
      assert.equal(recent.exitCode, 0);
      assert.equal(recent.stdout, "", "nothing is younger than 0 s");
      const bad = await execa("node", [vmbs, "events", "--since", "yesterday"], { env, reject: false });
      assert.equal(bad.exitCode, 2);
      assert.match(bad.stderr, /--since must be a number with s, m, h or d/);
    });

    it("--follow prints new events as they come", async () => {
      const follow = execa("node", [vmbs, "events", "--host", host, "--since", "0s", "--follow"], { env, reject: false });
      let out = "";
      follow.stdout?.on("data", (c: Buffer) => (out += c.toString()));
      try {
        // The consumer exists once the process is connected: publish until the follower shows the new event.
        await waitFor(
          async () => {
            await publishChain(host, "live", "repaired", "dropped a broken checkpoint");
            return out.includes('"domain":"live"');
          },
          { timeoutMs: 20_000, intervalMs: 500, what: "the followed event" },
        );
        assert.ok(!out.includes('"domain":"db"'), "only the given host");
      } finally {
        follow.kill("SIGINT");
        await follow;
      }
    });

    it("prints lines a person reads on a terminal", async () => {
      const r = await runOnPty("node", [vmbs, "events", "--host", host], env, []);
      assert.equal(r.exitCode, 0, r.out);
      assert.match(r.out, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ {2}h1 {2}chain archived {2}web {2}rotated on request/);
      assert.doesNotMatch(r.out, /^\{/m, "no JSON on a terminal");
      const json = await runOnPty("node", [vmbs, "events", "--host", host, "--json"], env, []);
      assert.match(json.out, /^\{"subject":"vmbs\.evt\.chain\.h1\.checked"/m, "--json keeps JSON lines on a terminal");
    });
  });
});

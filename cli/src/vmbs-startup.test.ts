import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { chmod, mkdir, readdir, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { Kvm } from "@nats-io/kv";
import { connectBus } from "@vmbs/bus";
import { buckets } from "@vmbs/contracts";
import { createLab, freePort, ignoredListExcept, startTestNats, waitFor, type Lab, type TestNats } from "@vmbs/lab";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

async function listen(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}
const portOf = (server: Server) => (server.address() as { port: number }).port;

/** nats-server processes whose command line names this store (each run gets its own VMBS_STATE_DIR). */
async function natsServersOf(stateDir: string): Promise<string> {
  return (await execa("pgrep", ["-f", `nats-server.*${stateDir}/nats`], { reject: false })).stdout.trim();
}

/** The lines a person reads: stderr without blank lines. */
const linesOf = (stderr: unknown) => String(stderr).split("\n").filter((l) => l.trim() !== "");

describe("start-up refusals and stops a person can read (real processes)", { timeout: 600_000 }, () => {
  let lab: Lab;
  let nats: TestNats;
  let base: Record<string, string>;
  const running: ResultPromise[] = [];
  const blockers: Server[] = [];

  /** A fresh state dir (so pgrep finds only this run's nats-server) and a private backup folder. */
  const envFor = async (over: Record<string, string> = {}): Promise<Record<string, string>> => {
    const state = await lab.tempDir("state-");
    return { ...base, LOGFILE_PATH: `${state}/logs/vmbs.log`, VMBS_STATE_DIR: state, VMBS_LOCAL_NATS_PORT: String(await freePort()), ...over };
  };
  const spawnVmbs = (role: string, env: Record<string, string>) => {
    const child = execa("node", [vmbs, role], { env, reject: false, forceKillAfterDelay: false, all: true });
    running.push(child);
    return child;
  };
  const serving = (child: ResultPromise) => {
    let out = "";
    child.all?.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    return waitFor(async () => out.includes("backup agent serving") || undefined, { timeoutMs: 120_000, intervalMs: 200, what: "the agent to serve" });
  };

  before(async () => {
    lab = await createLab();
    nats = await startTestNats();
    base = { LOCAL_BACKUP_PATH: await lab.tempDir("backups-"), VM_IGNORED_LIST: await ignoredListExcept(lab.uri), VM_ALLOWED_LIST: lab.allowedList, NATS_URL: "" };
  });
  after(async () => {
    for (const child of running) child.kill("SIGKILL");
    for (const b of blockers) b.close();
    await nats?.stop();
    await lab?.cleanup();
  });

  it("refuses before anything runs: one stderr line naming the setting and the fix, a distinct exit status, no nats-server left", async () => {
    const scratch = await lab.tempDir("roots-");
    const toEtc = join(scratch, "to-etc");
    await symlink("/etc", toEtc);
    const open = join(scratch, "open");
    await mkdir(open);
    await chmod(open, 0o1777);
    const marked = join(scratch, "marked");
    await mkdir(marked);
    await writeFile(join(marked, ".vm-babysitter-root"), "{not json");
    const badPolicy = join(scratch, "bad-policy.yaml");
    await writeFile(badPolicy, 'domains:\n  - match: a\n    rpoMinutes: 0\n  - match: b\n    hooks: {pre: "quiesce; rm -rf /"}\n');
    const blocker = await listen();
    blockers.push(blocker);
    const rows: [string, string, Record<string, string>, number, RegExp][] = [
      ["a missing backup folder", "start", { LOCAL_BACKUP_PATH: "/srv/vmbs-missing" }, 73,
        /^vmbs: LOCAL_BACKUP_PATH \/srv\/vmbs-missing does not exist — create it \(mkdir -p \/srv\/vmbs-missing\) or point LOCAL_BACKUP_PATH at your backup share$/],
      ["a symlink to /etc", "start", { LOCAL_BACKUP_PATH: toEtc }, 73, /^vmbs: LOCAL_BACKUP_PATH \S+to-etc \(resolves to \/etc\) is a system folder — use a folder of its own/],
      ["the root folder", "agent", { LOCAL_BACKUP_PATH: "/" }, 73, /^vmbs: LOCAL_BACKUP_PATH \/ is a system folder/],
      ["a world-writable folder", "start", { LOCAL_BACKUP_PATH: open }, 73, /^vmbs: LOCAL_BACKUP_PATH \S+open is writable by every user — make it private \(chmod o-w /],
      ["a corrupt backup root marker", "start", { LOCAL_BACKUP_PATH: marked }, 73, /^vmbs: LOCAL_BACKUP_PATH marker \S+marked\/\.vm-babysitter-root: payload is not valid JSON.* restore it \(content \{"id":"<host id>"\}\) or, if no other agent uses this root, delete it/],
      ["a malformed NATS_URL", "agent", { NATS_URL: "http://admin:s3cret@nats:4222" }, 78, /^vmbs: invalid configuration: NATS_URL: expected nats:\/\/host:port .*\(got "http:\/\/\*\*\*@nats:4222"\)$/],
      ["an unreachable NATS_URL", "start", { NATS_URL: `nats://127.0.0.1:${await freePort()}` }, 69, /^vmbs: NATS_URL nats:\/\/127\.0\.0\.1:\d+ is not reachable \(.+\) — start nats-server there, correct NATS_URL, or unset it/],
      ["a taken local NATS port", "start", { VMBS_LOCAL_NATS_PORT: String(portOf(blocker)) }, 69, /^vmbs: could not start the local nats-server on 127\.0\.0\.1:\d+ \(.+\) — set VMBS_LOCAL_NATS_PORT to a free port/],
      ["a bad policy file (every bad entry named)", "start", { VMBS_POLICY_FILE: badPolicy }, 78,
        /^vmbs: VMBS_POLICY_FILE \S+bad-policy\.yaml: domains\[0\] \(match "a"\) rpoMinutes: .* domains\[1\] \(match "b"\) hooks\.pre: .* — fix the file or unset VMBS_POLICY_FILE$/],
      ["an unwritable log file", "start", { LOGFILE_PATH: `${join(scratch, "to-etc", "hostname")}/vmbs.log` }, 78, /^vmbs: LOGFILE_PATH \S+ is not writable \(.+\) — create its folder or point LOGFILE_PATH elsewhere$/],
    ];
    for (const [name, role, over, status, line] of rows) {
      const env = await envFor(over);
      const started = Date.now();
      const r = await execa("node", [vmbs, role], { env, reject: false, timeout: 60_000 });
      const lines = linesOf(r.stderr);
      assert.equal(r.exitCode, status, `${name}: exit status (stderr: ${r.stderr})`);
      assert.equal(lines.length, 1, `${name}: exactly one stderr line, got ${JSON.stringify(lines)}`);
      assert.match(lines[0]!, line, name);
      assert.ok(!r.stderr.includes("s3cret") && !r.stdout.includes("s3cret"), `${name}: no password shown`);
      assert.equal(await natsServersOf(env.VMBS_STATE_DIR!), "", `${name}: no nats-server left running`);
      assert.ok(Date.now() - started < 30_000, `${name}: refused promptly`);
    }
    // A bad config still names every variable, one plain line each.
    const config = await execa("node", [vmbs, "start"], { env: await envFor({ MAX_BACKUPS_PER_CHAIN: "3a", VM_ALLOW_POWERCYCLE: "maybe" }), reject: false });
    assert.equal(config.exitCode, 78);
    assert.deepEqual(linesOf(config.stderr).map((l) => /^vmbs: invalid configuration: (\w+): /.exec(l)?.[1]), ["MAX_BACKUPS_PER_CHAIN", "VM_ALLOW_POWERCYCLE"]);
  });

  it("one agent per HOST_ID: a second is refused naming the first; after the first stops a new one starts; a host id taken over stops the agent", async () => {
    const env = await envFor({ NATS_URL: nats.url, HOST_ID: `dup${Date.now().toString(36)}` });
    const first = spawnVmbs("agent", env);
    await serving(first);
    const second = await execa("node", [vmbs, "agent"], { env: await envFor({ NATS_URL: nats.url, HOST_ID: env.HOST_ID! }), reject: false, timeout: 60_000 });
    assert.equal(second.exitCode, 75, second.stderr);
    const lines = linesOf(second.stderr);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.match(lines[0]!, new RegExp(`^vmbs: HOST_ID ${env.HOST_ID} is already served by another agent \\(\\S+ pid ${first.pid}, running since \\S+\\) — set HOST_ID to a value unique to each machine`));

    first.kill("SIGTERM");
    assert.equal((await first).exitCode, 0, "the first stops cleanly (and releases its presence)");
    const third = spawnVmbs("agent", await envFor({ NATS_URL: nats.url, HOST_ID: env.HOST_ID! }));
    await serving(third);

    // Someone takes the host id while the agent runs: it stops taking commands and exits non-zero, saying why.
    const nc = await connectBus(nats.url, "intruder");
    try {
      const kv = await new Kvm(nc).open(buckets.agentPresence);
      await kv.put(env.HOST_ID!, JSON.stringify({ host: env.HOST_ID, hostname: "intruder-box", machineId: "x", bootId: "y", pid: 7, since: "2026-01-01T00:00:00Z" }));
      const stopped = await third;
      assert.equal(stopped.exitCode, 75);
      const last = linesOf(stopped.stderr).at(-1) ?? "";
      assert.match(last, new RegExp(`^vmbs: another agent took over HOST_ID ${env.HOST_ID} \\(intruder-box pid 7, running since 2026-01-01T00:00:00Z\\); this agent stopped taking commands`));
      assert.match(String(stopped.stdout), /backup agent stopped/, "the services were stopped before the exit");
    } finally {
      await nc.close();
    }
  });

  it("`vmbs start` writes private backups (umask 077) and exits non-zero when its own nats-server dies", async () => {
    const dom = await lab.createDomain({ name: `${lab.domainPrefix}umask-${Date.now().toString(16)}` });
    const env = await envFor({ HOST_ID: `own${Date.now().toString(36)}`, VM_IGNORED_LIST: await ignoredListExcept(lab.uri, [dom.name]) });
    const stack = spawnVmbs("start", env);
    const backup = await waitFor(
      async () => {
        const r = await execa("node", [vmbs, "backup", "--domain", dom.name, "--level", "full", "--timeout", "180"], { env, reject: false });
        // Until the stack is up, the command fails before any event (no server, no stream yet).
        return r.exitCode !== 0 && r.stdout.trim() === "" ? undefined : r;
      },
      { timeoutMs: 180_000, intervalMs: 1000, what: "a backup through vmbs start" },
    );
    assert.equal(backup.exitCode, 0, `${backup.stdout} ${backup.stderr}`);
    const chain = join(env.LOCAL_BACKUP_PATH!, dom.name);
    const entries = await readdir(chain, { recursive: true });
    assert.ok(entries.some((e) => e.endsWith(".data")), `a data file in ${entries.join(", ")}`);
    for (const entry of [".", ...entries]) {
      const st = await stat(join(chain, entry));
      assert.equal(st.mode & 0o077, 0, `${entry} is private (mode ${(st.mode & 0o777).toString(8)})`);
    }
    assert.equal((await stat(join(env.VMBS_STATE_DIR!, "nats"))).mode & 0o077, 0, "the nats store is private");
    assert.equal((await stat(env.LOGFILE_PATH!)).mode & 0o077, 0, "the log file is private");

    const pid = await natsServersOf(env.VMBS_STATE_DIR!);
    assert.match(pid, /^\d+$/);
    const killedAt = Date.now();
    process.kill(Number(pid), "SIGKILL");
    const exit = await stack;
    assert.ok(Date.now() - killedAt < 30_000, "exits within seconds, not reconnecting forever");
    assert.equal(exit.exitCode, 69, String(exit.stderr));
    assert.match(linesOf(exit.stderr).at(-1) ?? "", new RegExp(`^vmbs: the local nats-server \\(pid ${pid}\\) exited \\(signal SIGKILL\\); the services were stopped — start vmbs again`));
    assert.match(String(exit.stdout), /backup agent stopped/, "the services were stopped first");
  });
});

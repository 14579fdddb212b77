import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { createLab, ignoredListExcept, runOnPty, vmbsProcessEnv, waitFor, type Lab, type LabDomain } from "@vmbs/lab";

/*
 * Issue 17.7 on a real stack (`vmbs start`: agent, restore service, its own closed nats-server) and a lab domain:
 * every task that needed the `nats` CLI, done with `vmbs` alone — backup --all, check, rotate, retention, drill —
 * each waiting for the work's real outcome, and `vmbs events` showing the history of all of it.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "hcmd";

type Line = Record<string, unknown> & { type: string; domain?: string; requestId?: string };

describe("vmbs backup --all, check, rotate, retention, drill and events on a real agent (lab)", { timeout: 600_000 }, () => {
  let lab: Lab;
  let env: Record<string, string>;
  let stack: ResultPromise | undefined;
  let dom: LabDomain;
  /** Runs `vmbs ...args`; its JSON lines (stdout is a pipe, so JSON without --json too). */
  const run = async (...args: string[]) => {
    const r = await execa("node", [vmbs, ...args], { env, reject: false, timeout: 300_000 });
    const lines = r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Line);
    return { ...r, lines };
  };

  before(async () => {
    lab = await createLab();
    dom = await lab.createDomain({ sizeMiB: 64 });
    env = {
      ...(await vmbsProcessEnv(lab, host)),
      VM_IGNORED_LIST: await ignoredListExcept(lab.uri, [dom.name]),
      // A slot far away: only the test's commands (and the agent's start-up backup of a new domain) run.
      BACKUP_SCHEDULE: "0 0 1 1 *",
    };
    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: 10_000 });
  });
  after(async () => {
    stack?.kill("SIGTERM");
    await stack;
    await lab?.cleanup();
  });

  it("backup --all backs up every scheduled domain and ends when the agent is done", async () => {
    // Until the stack serves, the command is refused at once: no server yet (69), or no live agent (69).
    const r = await waitFor(
      async () => {
        const attempt = await run("backup", "--all", "--timeout", "240");
        return attempt.exitCode === 69 ? undefined : attempt;
      },
      { timeoutMs: 120_000, intervalMs: 1000, what: "the stack's agent to take commands" },
    );
    // Other test runs on this libvirtd define (and remove) domains of their own while this runs: the agent counts them
    // as scheduled too, and a backup of one that vanished fails (exit 1). Only such failures are excused here.
    const ours = r.lines.filter((l) => l.domain === dom.name);
    assert.ok(r.exitCode === 0 || (r.exitCode === 1 && !ours.some((l) => l.type === "failed" || l.type === "attention")), `${r.stderr}${r.stdout}`);
    assert.match(r.stderr, /command stored in VMBS_CMD #\d+; waiting for host hcmd/);
    const backups = ours.filter((l) => "runId" in l);
    assert.deepEqual(backups.map((l) => l.type), ["started", "completed"], r.stdout);
    assert.equal(new Set(r.lines.map((l) => l.requestId)).size, 1, `only this command's events: ${r.stdout}`);
  });

  it("check, rotate and retention print the chain events of the work and exit 0", async () => {
    const check = await run("check", "--domain", dom.name, "--timeout", "240");
    assert.equal(check.exitCode, 0, check.stderr);
    assert.ok(check.lines.some((l) => l.type === "checked" && l.domain === dom.name && l.trigger === "command"), check.stdout);

    const rotate = await run("rotate", "--domain", dom.name, "--timeout", "240");
    assert.equal(rotate.exitCode, 0, rotate.stderr);
    const archived = rotate.lines.find((l) => l.type === "archived" && l.domain === dom.name);
    assert.ok(archived, rotate.stdout);

    // A new chain beside the archive, then the retention over both (the default keeps them).
    const full = await run("backup", "--domain", dom.name, "--level", "full", "--timeout", "240");
    assert.equal(full.exitCode, 0, full.stderr);
    const retention = await run("retention", "--domain", dom.name, "--timeout", "240");
    assert.equal(retention.exitCode, 0, retention.stderr);
    assert.ok(retention.lines.every((l) => l.domain === dom.name && l.type !== "deleted"), retention.stdout);
  });

  it("drill restores the domain's chains and prints the verdict", async () => {
    const drill = await run("drill", "--domain", dom.name, "--timeout", "300");
    assert.equal(drill.exitCode, 0, drill.stderr);
    assert.deepEqual(drill.lines.map((l) => l.type), ["started", "completed"]);
    const chains = drill.lines[1]!.chains as { set: string; ok: boolean }[];
    assert.ok(chains.length >= 2 && chains.every((c) => c.ok), JSON.stringify(chains));
  });

  it("events shows the history of all of it; on a terminal as lines a person reads", async () => {
    const events = await execa("node", [vmbs, "events", "--host", host], { env, reject: false, timeout: 60_000 });
    assert.equal(events.exitCode, 0, events.stderr);
    const kinds = events.stdout.trim().split("\n").map((l) => {
      const { subject } = JSON.parse(l) as { subject: string };
      return subject.split(".").slice(2, 5).filter((_, i) => i !== 1).join(" ");
    });
    for (const kind of ["backup completed", "chain checked", "chain archived", "drill completed"]) assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(", ")}`);

    const tty = await runOnPty("node", [vmbs, "check", "--domain", dom.name], { ...env, NO_COLOR: "1" }, []);
    assert.equal(tty.exitCode, 0, tty.out);
    assert.match(tty.out, new RegExp(`Z {2}${host} {2}chain checked {2}${dom.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} {2}plan \\w+`));
    assert.doesNotMatch(tty.out, /^\{/m);
  });
});

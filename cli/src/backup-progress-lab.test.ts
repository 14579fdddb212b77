import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { claimAgentPresence, type AgentPresence } from "@vmbs/bus";
import { backupProgressSchema, subjects, type BackupProgress } from "@vmbs/contracts";
import { createAgentHarness, holdStopped, runOnPty, stopEngineMidTransfer, type AgentHarness, type LabDomain } from "@vmbs/lab";

/*
 * Issue 17.5 on a real agent and a lab domain: `vmbs backup` on a terminal draws the run's progress (bytes done of
 * the engine's announced total, and the rate) under its event lines; for scripts (no terminal, or --json) it prints
 * the same JSON event lines as before, and no progress.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "progresshost";
const MiB = 1024 * 1024;
/** A drawn bar's figures: `web  160.0 MiB of 384.1 MiB · 80.0 MiB/s  ████░░ 42%`. */
const bar = /[\d.]+ (B|KiB|MiB) of [\d.]+ (KiB|MiB) · [\d.]+ (B|KiB|MiB)\/s/;

describe("vmbs backup progress (real agent, lab domain)", { timeout: 600_000 }, () => {
  let h: AgentHarness;
  let dom: LabDomain;
  let env: Record<string, string>;
  let presence: AgentPresence | undefined;
  const progress: BackupProgress[] = [];
  before(async () => {
    h = await createAgentHarness(host);
    env = { ...process.env, NATS_URL: h.nats.url, HOST_ID: host, VMBS_STATE_DIR: await h.lab.tempDir("cli-state-"), NO_COLOR: "1" } as Record<string, string>;
    // The buckets as `vmbs start` makes them (the CLI reads the agent's presence from them).
    const setup = await execa("node", [vmbs, "bus", "setup", "--hosts", host], { env, reject: false, timeout: 60_000 });
    assert.equal(setup.exitCode, 0, setup.stderr);
    await h.startAgent({}, { progressIntervalMs: 250 });
    // What `vmbs agent` does beside starting the agent: hold the host's presence key, which `vmbs backup` looks for.
    presence = await claimAgentPresence(h.nc, { host });
    dom = await h.lab.createDomain({ sizeMiB: 512 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 384 * MiB, pattern: 0x5a });
    const sub = h.nc.subscribe(subjects.progress.backup(host));
    void (async () => {
      for await (const m of sub) {
        const parsed = backupProgressSchema.safeParse(m.json());
        if (parsed.success) progress.push(parsed.data);
      }
    })();
  });
  after(async () => {
    await presence?.lease.release();
    await h?.close();
  });

  it("on a terminal: event lines and a bar with bytes done, the total and the rate", async () => {
    const run = runOnPty("node", [vmbs, "backup", "--domain", dom.name, "--level", "full", "--timeout", "240"], env, [[bar, ""]]);
    // The engine held mid-transfer for a while: the bar is drawn whatever the speed of this machine.
    await holdStopped(await stopEngineMidTransfer(join(h.backupRoot, dom.name), dom.name), 1_500);
    const r = await run;
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, new RegExp(`backup started  ${dom.name}  full`), r.out);
    // The figures, then the bar (a terminal narrower than the line cuts its end: the percentage may be gone).
    assert.match(r.out, new RegExp(`${dom.name}  ${bar.source}  [█░]+`), r.out);
    assert.match(r.out, new RegExp(`backup completed  ${dom.name}  full virtnbdbackup\\.0`), r.out);
    assert.doesNotMatch(r.out, /"type":/, "no JSON on a terminal");

    const ours = progress.filter((p) => p.domain === dom.name);
    assert.ok(ours.length > 0 && ours.every((p) => p.requestId !== undefined && p.type === "progress"), JSON.stringify(ours));
    const last = ours.at(-1)!;
    assert.ok(last.bytesDone > 0, JSON.stringify(last));
    // The engine's own words: 384 MiB written into the guest, so at least that much data to copy.
    assert.ok(last.bytesTotal !== undefined && last.bytesTotal >= 384 * MiB, JSON.stringify(last));
  });

  it("for scripts: the JSON event lines alone, with or without a terminal", async () => {
    const piped = await execa("node", [vmbs, "backup", "--domain", dom.name, "--timeout", "240"], { env, reject: false, timeout: 300_000 });
    assert.equal(piped.exitCode, 0, piped.stderr);
    const lines = piped.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => l.type), ["started", "completed"], piped.stdout);
    assert.ok(lines.every((l) => !("bytesDone" in l)), piped.stdout);

    const tty = await runOnPty("node", [vmbs, "backup", "--domain", dom.name, "--json", "--timeout", "240"], env, []);
    assert.equal(tty.exitCode, 0, tty.out);
    const ttyLines = tty.out.trim().split(/\r?\n/).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(ttyLines.map((l) => l.type), ["started", "completed"], tty.out);
    assert.doesNotMatch(tty.out, bar, "no bar with --json");
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { loadConfig } from "@vmbs/config";
import { replicateReplySchema, restoreEventSchema, restoreProgressSchema, restoreRunReplySchema, subjects, type RestoreEvent, type RestoreProgress } from "@vmbs/contracts";
import { createAgentHarness, holdStopped, runOnPty, stopImageConvertMidWrite, stopRestoreEngineMidWrite, testLogger, waitFor, type AgentHarness, type LabDomain } from "@vmbs/lab";
import { startRestoreService, type RestoreServiceHandle } from "@vmbs/restore";

/*
 * Issue 17.5 on a real restore service and a lab chain: `vmbs restore` on a terminal draws the engine's progress
 * (what the new images take so far, of the set's data up to the checkpoint, and the rate) under its step lines; for
 * scripts (no terminal, or --json) the reply is the same JSON line as before, and no bar is drawn. `vmbs replicate`
 * shares that code: its bar follows the disk copy.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "rstbar";
const MiB = 1024 * 1024;
/** A drawn bar's figures: `copy  96.0 MiB of 256.1 MiB · 80.0 MiB/s  ████░░ 37%`. */
const bar = /[\d.]+ (B|KiB|MiB) of [\d.]+ MiB · [\d.]+ (B|KiB|MiB)\/s/;

describe("vmbs restore progress (real restore service, lab chain)", { timeout: 900_000 }, () => {
  let h: AgentHarness;
  let service: RestoreServiceHandle | undefined;
  let dom: LabDomain;
  let env: Record<string, string>;
  /** Bytes of the set's data files (one full): the total a restore of it reports. */
  let setBytes: number;
  const copies: string[] = [];
  const progress: RestoreProgress[] = [];
  const events: RestoreEvent[] = [];
  const virsh = (args: string[]) => execa("virsh", ["-c", h.lab.uri, ...args], { stdin: "ignore", timeout: 60_000, reject: false });

  before(async () => {
    h = await createAgentHarness(host);
    await h.startAgent();
    env = { ...process.env, NATS_URL: h.nats.url, HOST_ID: host, LOCAL_BACKUP_PATH: h.backupRoot, VMBS_STATE_DIR: await h.lab.tempDir("cli-state-"), NO_COLOR: "1" } as Record<string, string>;
    dom = await h.lab.createDomain({ sizeMiB: 384 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 256 * MiB, pattern: 0x5a });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "full" }));
    const done = await h.waitEvent((e) => e.requestId === "full" && e.type !== "started");
    assert.equal(done.type, "completed", JSON.stringify(done));
    setBytes = (await stat(join(h.backupRoot, dom.name, "vda.full.data"))).size;
    const config = loadConfig({ LOCAL_BACKUP_PATH: h.backupRoot, HOST_ID: host, LIBVIRT_URI: h.lab.uri });
    service = await startRestoreService({ config, nc: h.nc, logger: testLogger("test-restore-progress"), progressIntervalMs: 250 });
    const progressSub = h.nc.subscribe(subjects.progress.restore(host));
    void (async () => {
      for await (const m of progressSub) progress.push(restoreProgressSchema.parse(m.json()));
    })();
    const eventSub = h.nc.subscribe(subjects.evt.serviceAll("restore", host));
    void (async () => {
      for await (const m of eventSub) events.push(restoreEventSchema.parse(m.json()));
    })();
  });
  after(async () => {
    await service?.stop();
    for (const c of copies) await virsh(["undefine", c]);
    // The copies' files (images, XML) beside the lab's images: only those named after a copy of this test.
    const folder = dom ? dirname(dom.diskPath) : undefined;
    if (folder) for (const f of await readdir(folder)) if (copies.some((c) => f.startsWith(`${c}.`))) await rm(join(folder, f), { force: true });
    await h?.close();
  });

  /**
   * Holds the engine of the run restoring `copy` mid-write for a while, so progress is published whatever the speed
   * of this machine; resolves with the run's engine step. Its staging folder is named by that step event (only this
   * test's run: the target is ours).
   */
  const holdEngine = async (copy: string): Promise<RestoreEvent> => {
    const step = await waitFor(() => events.find((e) => e.target === copy && e.step?.startsWith("virtnbdrestore ")), { timeoutMs: 120_000, what: "the engine step" });
    await holdStopped(await stopRestoreEngineMidWrite(/ into (\/\S+)$/.exec(step.step!)![1]!, 8 * MiB), 1_500);
    return step;
  };

  it("on a terminal: step lines and a bar with bytes written, the set's data and the rate", async () => {
    const copy = `${dom.name}-bar`;
    copies.push(copy);
    const run = runOnPty("node", [vmbs, "restore", "--domain", dom.name, "--as", copy, "--timeout", "600"], env, [[bar, ""]]);
    const step = await holdEngine(copy);
    const r = await run;
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, new RegExp(`restore started  ${dom.name}  → ${copy}`), r.out);
    // The figures, then the bar (a terminal narrower than the line cuts its end: the percentage may be gone).
    assert.match(r.out, new RegExp(`${copy}  ${bar.source}  [█░]+`), r.out);
    assert.match(r.out, new RegExp(`restore completed  ${dom.name}  → ${copy}`), r.out);

    const ours = progress.filter((p) => p.target === copy);
    assert.ok(ours.length > 0 && ours.every((p) => p.requestId !== undefined && p.runId === step.runId && p.domain === dom.name), JSON.stringify(ours));
    // The total is the set's data (more only once the images take more than that); done grows to it.
    assert.ok(ours.every((p) => p.bytesTotal === Math.max(setBytes, p.bytesDone)), `${setBytes} ${JSON.stringify(ours)}`);
    assert.ok(ours.some((p) => p.bytesDone >= 8 * MiB), JSON.stringify(ours));
    assert.ok(ours.some((p) => p.rate > 0), JSON.stringify(ours));
  });

  it("for scripts: the reply's JSON line and the steps, no bar, with or without a terminal", async () => {
    const copy = `${dom.name}-piped`;
    copies.push(copy);
    const piped = await execa("node", [vmbs, "restore", "--domain", dom.name, "--as", copy, "--timeout", "600"], { env, reject: false, timeout: 700_000 });
    assert.equal(piped.exitCode, 0, piped.stderr);
    assert.equal(restoreRunReplySchema.parse(JSON.parse(piped.stdout)).domain, copy);
    assert.match(piped.stderr, /^started/m);
    assert.doesNotMatch(piped.stderr, bar);

    const json = `${dom.name}-json`;
    copies.push(json);
    const run = runOnPty("node", [vmbs, "restore", "--domain", dom.name, "--as", json, "--json", "--timeout", "600"], env, []);
    await holdEngine(json);
    const tty = await run;
    assert.equal(tty.exitCode, 0, tty.out);
    assert.ok(progress.some((p) => p.target === json), "progress was published meanwhile");
    const reply = tty.out.split(/\r?\n/).find((l) => l.startsWith("{"));
    assert.equal(restoreRunReplySchema.parse(JSON.parse(reply!)).domain, json);
    assert.doesNotMatch(tty.out, bar, "no bar with --json");
  });

  it("vmbs replicate on a terminal: a bar of the disk copy, the disk's virtual size gone through and the rate", async () => {
    const source = await h.lab.createDomain({ sizeMiB: 384, running: false });
    await h.lab.writeGuest(source.name, { offset: 0, length: 256 * MiB, pattern: 0x3c });
    const copy = `${source.name}-rep`;
    copies.push(copy);
    const run = runOnPty("node", [vmbs, "replicate", "--domain", source.name, "--as", copy, "--timeout", "600"], env, [[bar, ""]]);
    // The copy held mid-write for a while: the bar is drawn whatever the speed of this machine.
    await holdStopped(await stopImageConvertMidWrite(source.diskPath, 1 * MiB), 1_500);
    const r = await run;
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, new RegExp(`${copy}  ${bar.source}  [█░]+`), r.out);
    assert.match(r.out, new RegExp(`restore completed  ${source.name}  → ${copy}`), r.out);
    assert.match(r.out, new RegExp(`target  ${copy}`), r.out);

    const ours = progress.filter((p) => p.target === copy);
    assert.ok(ours.length > 0 && ours.every((p) => p.operation === "replicate" && p.requestId !== undefined && p.bytesTotal === 384 * MiB), JSON.stringify(ours));
    assert.ok(ours.some((p) => p.bytesDone > 0 && p.bytesDone < 384 * MiB), JSON.stringify(ours));
    // Scripts: the reply alone on stdout.
    const piped = await execa("node", [vmbs, "replicate", "--domain", source.name, "--as", `${copy}2`, "--timeout", "600"], { env, reject: false, timeout: 700_000 });
    copies.push(`${copy}2`);
    assert.equal(piped.exitCode, 0, piped.stderr);
    assert.equal(replicateReplySchema.parse(JSON.parse(piped.stdout)).target, `${copy}2`);
    assert.doesNotMatch(piped.stderr, bar);
  });
});

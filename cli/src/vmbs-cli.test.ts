import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { createLab, vmbsProcessEnv, waitFor, type Lab } from "@vmbs/lab";
import { backupEventSchema } from "@vmbs/contracts";
import { onceStackUp } from "./testing/once-stack-up.js";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const MiB = 1024 * 1024;

describe("vmbs CLI, as a user runs it", () => {
  let lab: Lab;
  let env: Record<string, string>;
  let stack: ResultPromise | undefined;
  before(async () => {
    lab = await createLab();
    env = await vmbsProcessEnv(lab, "clihost");
  });
  after(async () => {
    stack?.kill("SIGKILL");
    await lab?.cleanup();
  });

  it("prints help for every command", async () => {
    for (const args of [["--help"], ["start", "--help"], ["agent", "--help"], ["scheduler", "--help"], ["backup", "--help"]]) {
      const r = await execa("node", [vmbs, ...args], { env });
      assert.equal(r.exitCode, 0);
      assert.match(r.stdout, /Usage: vmbs/);
    }
    const bad = await execa("node", [vmbs, "backup", "--bogus"], { env, reject: false });
    assert.equal(bad.exitCode, 2);
    const noDomain = await execa("node", [vmbs, "backup"], { env, reject: false });
    assert.equal(noDomain.exitCode, 2);
    assert.match(noDomain.stderr, /give exactly one of --domain and --all/);
    const badHost = await execa("node", [vmbs, "backup", "--domain", "x", "--host", "a.b"], { env, reject: false });
    assert.equal(badHost.exitCode, 2);
    assert.match(badHost.stderr, /--host must be a host id/);
    const badLevel = await execa("node", [vmbs, "backup", "--domain", "x", "--level", "copy"], { env, reject: false });
    assert.equal(badLevel.exitCode, 2);
    assert.match(badLevel.stderr, /--level must be one of auto, full, inc/);
  });

  it("stops with exit code 78 and names the variable on a bad configuration (73 for a missing backup folder)", async () => {
    const r = await execa("node", [vmbs, "start"], { env: { ...env, MAX_BACKUPS_PER_CHAIN: "3a", VM_ALLOW_POWERCYCLE: "maybe" }, reject: false });
    assert.equal(r.exitCode, 78);
    assert.match(r.stderr, /MAX_BACKUPS_PER_CHAIN: expected a whole number/);
    assert.match(r.stderr, /VM_ALLOW_POWERCYCLE: expected yes\/no/);
    const missing = await execa("node", [vmbs, "start"], { env: { ...env, LOCAL_BACKUP_PATH: "/nonexistent/backups" }, reject: false, timeout: 30_000 });
    assert.equal(missing.exitCode, 73);
    assert.match(missing.stderr, /LOCAL_BACKUP_PATH \/nonexistent\/backups does not exist — create it/);
  });

  it("`vmbs start` runs its own nats-server; `vmbs backup` prints the outcome; SIGTERM cancels a run and leaves no job", async () => {
    const dom = await lab.createDomain({ name: `${lab.domainPrefix}cli ${Date.now().toString(16)}`, sizeMiB: 1024 });
    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: false });
    const backup = (level: string) => execa("node", [vmbs, "backup", "--domain", dom.name, "--level", level, "--timeout", "120"], { env, reject: false });
    const first = await onceStackUp(() => backup("auto"));
    assert.equal(first.exitCode, 0, first.stderr);
    // The chain events of the checks around the backup come too: the backup's own are those with a runId.
    const lines = first.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const events = lines.filter((l) => "runId" in l).map((l) => backupEventSchema.parse(l));
    assert.deepEqual(events.map((e) => e.type), ["started", "completed"]);

    await lab.writeGuest(dom.name, { offset: 0, length: 768 * MiB, pattern: 0x3c });
    const running = backup("inc");
    await waitFor(async () => (await execa("virsh", ["-c", lab.uri, "domjobinfo", "--domain", dom.name])).stdout.includes("Backup"), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: "the backup job to start",
    });
    stack.kill("SIGTERM");
    const exit = await stack;
    assert.equal(exit.exitCode, 0, `graceful shutdown: signal=${exit.signal} ${String(exit.stderr).slice(-800)} ${String(exit.stdout).slice(-1500)}`);
    const outcome = await running;
    assert.match(outcome.stdout, /"type":"failed".*cancelled/);
    const job = await execa("virsh", ["-c", lab.uri, "domjobinfo", "--domain", dom.name]);
    assert.match(job.stdout, /Job type:\s+None/, "no libvirt backup job is left running");
    const nats = await execa("pgrep", ["-f", `nats-server.*${env.VMBS_LOCAL_NATS_PORT}`], { reject: false });
    assert.equal(nats.stdout.trim(), "", "the local nats-server stopped with the stack");
  });
});

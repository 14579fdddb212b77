import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { connectBus, ensureStreams, type NatsConnection } from "@vmbs/bus";
import { loadConfig } from "@vmbs/config";
import { replicateReplySchema } from "@vmbs/contracts";
import { createLab, runOnPty, startTestNats, vmbsProcessEnv, type Lab, type TestNats, testLogger } from "@vmbs/lab";
import { startRestoreService, type RestoreServiceHandle } from "@vmbs/restore";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "rplcli";

describe("vmbs replicate, scripted, against a host's restore service", () => {
  let lab: Lab;
  let nats: TestNats;
  let nc: NatsConnection;
  let service: RestoreServiceHandle;
  let env: Record<string, string>;
  const copies: string[] = [];
  const pools: string[] = [];
  const virsh = (args: string[]) => execa("virsh", ["-c", lab.uri, ...args], { stdin: "ignore", timeout: 60_000, reject: false });
  const replicate = (args: string[]) => execa("node", [vmbs, "replicate", ...args], { env, reject: false, stdin: "pipe", timeout: 300_000 });

  before(async () => {
    // The service runs in this process: with the umask `vmbs start` sets, as in production.
    process.umask(0o077);
    lab = await createLab();
    nats = await startTestNats();
    nc = await connectBus(nats.url, "test");
    await ensureStreams(nc);
    env = { ...(await vmbsProcessEnv(lab, host)), NATS_URL: nats.url, LIBVIRT_URI: lab.uri };
    service = await startRestoreService({ config: loadConfig(env), nc, logger: testLogger("test-restore") });
  });
  after(async () => {
    await service?.stop();
    for (const p of pools) await virsh(["pool-undefine", p]);
    for (const c of copies) {
      await virsh(["undefine", c]);
      await rm(join(lab.imageDir, `${c}.vda.qcow2`), { force: true });
    }
    await nc?.close();
    await nats?.stop();
    await lab?.cleanup();
  });

  it("bad usage exits 2; a shut-off domain is copied (exit 0, JSON reply, steps on stderr); a running one without a terminal and without --yes is refused (exit 1) and nothing is defined", async () => {
    assert.equal((await replicate(["--domain", "x"])).exitCode, 2);
    const badMac = await replicate(["--domain", "x", "--as", "y", "--mac", "custom"]);
    assert.equal(badMac.exitCode, 2);
    assert.match(badMac.stderr, /--mac must be keep or random/);

    const dom = await lab.createDomain({ sizeMiB: 16, running: false });
    const copy = `${dom.name}-c`;
    copies.push(copy);
    // Into a folder that does not exist yet: created traversable for QEMU, so the copy starts. The service writes
    // images only into libvirt's image folders: the folder is a storage pool's, as an admin would define it.
    const diskDir = join(await lab.tempDir("replicas-"), "new", "sub");
    const pool = `vmbs-lab-pool-${Date.now().toString(16)}`;
    pools.push(pool);
    assert.equal((await virsh(["pool-define-as", pool, "dir", "--target", diskDir])).exitCode, 0);
    const run = await replicate(["--domain", dom.name, "--as", copy, "--disk-dir", diskDir]);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.match(run.stderr, /^started$/m);
    assert.match(run.stderr, /^completed$/m);
    const reply = replicateReplySchema.parse(JSON.parse(run.stdout));
    assert.deepEqual(reply.images, [join(diskDir, `${copy}.vda.qcow2`)]);
    assert.equal(reply.restarted, false);
    assert.equal((await virsh(["domuuid", copy])).stdout.trim(), reply.uuid);
    assert.equal((await execa("qemu-img", ["compare", dom.diskPath, reply.images[0]!], { timeout: 60_000, reject: false })).exitCode, 0);
    assert.equal((await virsh(["start", copy])).exitCode, 0);
    await virsh(["destroy", copy]);

    await virsh(["start", dom.name]);
    const refused = await replicate(["--domain", dom.name, "--as", `${dom.name}-d`]);
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stdout, /is running; .*consent/);
    assert.notEqual((await virsh(["domuuid", `${dom.name}-d`])).exitCode, 0, "nothing defined");
    const plan = await replicate(["--domain", dom.name, "--as", copy, "--plan", "--yes"]);
    assert.equal(plan.exitCode, 1);
    assert.match(JSON.parse(plan.stdout).refusal, /exists already/);

    // On a terminal: target, name and disks chosen with the prompts, the plan shown, then confirmed.
    await virsh(["destroy", dom.name]);
    const ttyCopy = `${dom.name}-t`;
    copies.push(ttyCopy);
    const enter = "\r";
    const down = "\x1b[B";
    // Without colours, which would split the prompts' text; --json: the reply as one JSON line on the terminal too.
    const chosen = await runOnPty("node", [vmbs, "replicate", "--domain", dom.name, "--json"], { ...env, NO_COLOR: "1" }, [
      [/\? Target/, enter],
      [/\? Name of the new domain/, `${ttyCopy}${enter}`],
      [/\? Disks/, enter],
      [/\? Replicate .* as .*-t on /, down],
      [/❯ Yes/, enter],
    ]);
    assert.equal(chosen.exitCode, 0, chosen.out);
    assert.match(chosen.out, /copy .* as qcow2 to /);
    const line = chosen.out.split(/\r?\n/).find((l) => l.startsWith('{"domain"'));
    assert.equal(replicateReplySchema.parse(JSON.parse(line ?? "null")).target, ttyCopy);
    assert.equal((await virsh(["domstate", ttyCopy])).stdout.trim(), "shut off");
  });
});

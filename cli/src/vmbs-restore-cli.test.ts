import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { restoreRunReplySchema, restoreSetsReplySchema } from "@vmbs/contracts";
import { createLab, imageDigest, runOnPty, startTestNats, vmbsProcessEnv, waitFor, type Lab } from "@vmbs/lab";
import { onceStackUp } from "./testing/once-stack-up.js";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const MiB = 1024 * 1024;

describe("vmbs restore, as a user runs it against `vmbs start` with bus auth, scripted and on a terminal", () => {
  let lab: Lab;
  let env: Record<string, string>;
  let stack: ResultPromise | undefined;
  const copies: string[] = [];
  /** The domain test 2 backed up (one chain in env's LOCAL_BACKUP_PATH) and its disk's digest at that backup. */
  let backedUp: { name: string; diskPath: string; digest: string } | undefined;
  const virsh = (args: string[]) => execa("virsh", ["-c", lab.uri, ...args], { stdin: "ignore", timeout: 60_000, reject: false });
  before(async () => {
    lab = await createLab();
    env = await vmbsProcessEnv(lab, "rstcli");
  });
  after(async () => {
    stack?.kill("SIGKILL");
    for (const c of copies) await virsh(["undefine", c]);
    await lab?.cleanup();
  });

  it("refuses bad usage (2) and, without a terminal and without --yes, an in-place restore (1) before asking anyone", async () => {
    const both = await execa("node", [vmbs, "restore", "--domain", "x", "--as", "y", "--in-place"], { env, reject: false });
    assert.equal(both.exitCode, 2);
    assert.match(both.stderr, /exactly one of --as NEW_NAME and --in-place/);
    const badCp = await execa("node", [vmbs, "restore", "--domain", "x", "--as", "y", "--checkpoint", "-1"], { env, reject: false });
    assert.equal(badCp.exitCode, 2);
    const noYes = await execa("node", [vmbs, "restore", "--domain", "x", "--in-place"], { env, reject: false, stdin: "pipe" });
    assert.equal(noYes.exitCode, 1);
    assert.match(noYes.stderr, /without a terminal it needs --yes/);
  });

  it("`vmbs start` serves the restore endpoints with the restore role; --list and --as restore the backed-up disk", async () => {
    assert.equal((await execa("node", [vmbs, "auth", "init"], { env, reject: false })).exitCode, 0);
    const dom = await lab.createDomain({ sizeMiB: 64 });
    await lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0x6b });
    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: false });
    const backup = await onceStackUp(() => execa("node", [vmbs, "backup", "--domain", dom.name, "--timeout", "120"], { env, reject: false }));
    assert.equal(backup.exitCode, 0, backup.stderr);
    const live = await lab.diskDigest(dom.name);
    backedUp = { name: dom.name, diskPath: dom.diskPath, digest: live };

    const list = await execa("node", [vmbs, "restore", "--domain", dom.name, "--list"], { env, reject: false });
    assert.equal(list.exitCode, 0, list.stderr);
    // A backup command sent while the stack was still starting may have been stored and run too: 1 or 2 checkpoints.
    const sets = restoreSetsReplySchema.parse(JSON.parse(list.stdout)).sets;
    assert.deepEqual(sets.map((s) => s.name), [dom.name]);
    assert.ok(sets[0]!.checkpoints >= 1);

    const plan = await execa("node", [vmbs, "restore", "--domain", dom.name, "--in-place", "--plan"], { env, reject: false });
    assert.equal(plan.exitCode, 1, "a plan that would be refused exits 1");
    assert.match(JSON.parse(plan.stdout).refusal, /running.*consent/);
    assert.deepEqual(JSON.parse(plan.stdout).images, [dom.diskPath]);

    const copy = `${dom.name}-copy`;
    copies.push(copy);
    const run = await execa("node", [vmbs, "restore", "--domain", dom.name, "--checkpoint", "latest", "--as", copy], { env, reject: false });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.match(run.stderr, /^started/m);
    const reply = restoreRunReplySchema.parse(JSON.parse(run.stdout));
    assert.equal(reply.defined, true);
    assert.equal(await imageDigest(reply.images[0]!), live);
    const again = await execa("node", [vmbs, "restore", "--domain", dom.name, "--as", copy], { env, reject: false });
    assert.equal(again.exitCode, 1);
    assert.match(again.stdout, /exists already/);

    // The interactive flow on a real pseudo-terminal (without colours, which would split the prompts' text).
    const tty = (args: string[], steps: [RegExp, string][]) => runOnPty("node", [vmbs, "restore", ...args], { ...env, NO_COLOR: "1" }, steps);
    const enter = "\r";
    const down = "\x1b[B";
    const refused = await tty(["--domain", dom.name, "--in-place"], [[/Replace the disks of/, enter]]);
    assert.equal(refused.exitCode, 1, refused.out);
    assert.match(refused.out, /not confirmed, nothing changed/);

    // Without --json a terminal gets the reply as lines a person reads: the sets, one field a line.
    const listed = await tty(["--domain", dom.name, "--list"], []);
    assert.equal(listed.exitCode, 0, listed.out);
    assert.match(listed.out, new RegExp(`^sets\\r?\\n {2}- name {2}${dom.name}\\r?\\n {4}active {2}true\\r?$`, "m"), listed.out);
    assert.doesNotMatch(listed.out, /\{"/, "no JSON on a terminal");

    const ttyCopy = `${dom.name}-tty`;
    copies.push(ttyCopy);
    // --json: the reply as one JSON line on the terminal too (without it, lines a person reads).
    const chosen = await tty(["--domain", dom.name, "--json"], [
      [/\? Backup set/, enter],
      [/\? Checkpoint/, enter],
      [/\? Restore to/, enter],
      [/\? Name of the new domain/, `${ttyCopy}${enter}`],
      [/\? Restore .* as new domain/, down],
      [/❯ Yes/, enter],
    ]);
    assert.equal(chosen.exitCode, 0, chosen.out);
    const line = chosen.out.split(/\r?\n/).find((l) => l.startsWith('{"domain"'));
    const ttyReply = restoreRunReplySchema.parse(JSON.parse(line ?? "null"));
    assert.equal(ttyReply.domain, ttyCopy);
    assert.equal(await imageDigest(ttyReply.images[0]!), live);

    stack.kill("SIGTERM");
    assert.equal((await stack).exitCode, 0);
    await execa("rm", ["-f", "--", ...reply.images, reply.xmlPath!, ...ttyReply.images, ttyReply.xmlPath!]);
  });

  it("`vmbs restore-service` (a host that runs `vmbs agent`): SIGKILLed during an in-place restore, the original disk is intact; restarted, it would restore again", async () => {
    assert.ok(backedUp, "test 2 backed up a domain");
    const { name, diskPath, digest } = backedUp;
    await virsh(["destroy", name]);
    await lab.writeGuest(name, { offset: 0, length: 2 * MiB, pattern: 0x6c }); // the disk now differs from the backup
    const current = await imageDigest(diskPath);
    assert.notEqual(current, digest);
    const nats = await startTestNats();
    const soloEnv = { ...env, NATS_URL: nats.url };
    // Its own process group, so that the kill takes its virtnbdrestore too, as a crash of the service's container would.
    const startService = () => execa("node", [vmbs, "restore-service"], { env: soloEnv, reject: false, forceKillAfterDelay: false, detached: true });
    let service = startService();
    try {
      const list = await waitFor(
        async () => {
          const r = await execa("node", [vmbs, "restore", "--domain", name, "--list", "--timeout", "5"], { env: soloEnv, reject: false });
          return r.exitCode === 0 ? r : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: "the restore service to answer" },
      );
      assert.deepEqual(restoreSetsReplySchema.parse(JSON.parse(list.stdout)).sets.map((s) => s.name), [name]);

      const stagingBefore = await readdir(dirname(diskPath));
      const killed = execa("node", [vmbs, "restore", "--domain", name, "--in-place", "--yes", "--timeout", "20"], { env: soloEnv, reject: false });
      let err = "";
      killed.stderr?.on("data", (c: Buffer) => (err += c.toString()));
      await waitFor(() => /^progress: virtnbdrestore/m.test(err), { timeoutMs: 60_000, intervalMs: 5, what: "the engine to start" });
      process.kill(-service.pid!, "SIGKILL");
      await service;
      // The client would wait for a reply until its --timeout; nothing will answer.
      killed.kill("SIGTERM");
      assert.doesNotMatch((await killed).stdout, /"images"/, "the restore did not finish");
      assert.equal(await imageDigest(diskPath), current, "the original disk is intact");
      assert.match((await virsh(["domblklist", name])).stdout, new RegExp(diskPath.replaceAll(".", "\\.")), "the domain still uses its disk");
      // What the killed run may leave: its staging folder beside the image (README: it may be deleted). The lab's
      // image folder is shared with later tests, which check that restores leave none.
      const leftovers = (await readdir(dirname(diskPath))).filter((n) => n.startsWith(".vmbs-restore-") && !stagingBefore.includes(n));
      assert.ok(leftovers.length <= 1, JSON.stringify(leftovers));
      for (const l of leftovers) await rm(join(dirname(diskPath), l), { recursive: true, force: true });

      // Restarted, the service would restore in place again (the real run would first wait out the killed run's
      // chain lease, up to its 30 s TTL).
      service = startService();
      const plan = await waitFor(
        async () => {
          const r = await execa("node", [vmbs, "restore", "--domain", name, "--in-place", "--plan", "--timeout", "5"], { env: soloEnv, reject: false });
          return r.stdout.trim() !== "" ? r : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: "the restarted restore service" },
      );
      assert.equal(plan.exitCode, 0, plan.stdout);
      assert.deepEqual(JSON.parse(plan.stdout).images, [diskPath]);
      service.kill("SIGTERM");
      assert.equal((await service).exitCode, 0);
    } finally {
      if (service.exitCode === null && service.signalCode === null) process.kill(-service.pid!, "SIGKILL");
      await nats.stop();
    }
  });
});

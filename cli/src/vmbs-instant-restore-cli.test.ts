import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rm, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { instantAbandonReplySchema, instantFinishReplySchema, instantRestoreReplySchema } from "@vmbs/contracts";
import { createLab, imageDigest, vmbsProcessEnv, type Lab } from "@vmbs/lab";
import { onceStackUp } from "./testing/once-stack-up.js";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const MiB = 1024 * 1024;

describe("vmbs instant-restore, as a user runs it against `vmbs start` with bus auth", () => {
  let lab: Lab;
  let env: Record<string, string>;
  let stack: ResultPromise | undefined;
  const made: { name: string; files: string[] }[] = [];
  const virsh = (args: string[]) => execa("virsh", ["-c", lab.uri, ...args], { stdin: "ignore", timeout: 60_000, reject: false });
  const run = (args: string[]) => execa("node", [vmbs, "instant-restore", ...args], { env, reject: false, stdin: "pipe", timeout: 300_000 });
  before(async () => {
    lab = await createLab();
    env = await vmbsProcessEnv(lab, "instcli");
  });
  after(async () => {
    stack?.kill("SIGTERM");
    await stack;
    for (const m of made) {
      await virsh(["destroy", m.name]);
      await virsh(["undefine", m.name, "--nvram", "--checkpoints-metadata"]);
      for (const f of m.files) await rm(f, { recursive: true, force: true });
    }
    await lab?.cleanup();
  });

  it("refuses bad usage (2), and --finish or --abandon without a terminal and without --yes (1), before asking anyone", async () => {
    for (const args of [["--domain", "x"], ["--as", "y"], ["--finish", "a", "--abandon", "b"], ["--finish", "a", "--domain", "x"], ["--domain", "x", "--as", "y", "--checkpoint", "-1"]]) {
      const r = await run(args);
      assert.equal(r.exitCode, 2, `${args.join(" ")}: ${r.stderr}`);
    }
    for (const end of ["--finish", "--abandon"]) {
      const r = await run([end, "x"]);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /without a terminal it needs --yes/);
    }
  });

  it("runs a backup at once as a new domain, finishes it onto a local image equal to the backup, and abandons another leaving nothing", async () => {
    assert.equal((await execa("node", [vmbs, "auth", "init"], { env, reject: false })).exitCode, 0);
    const dom = await lab.createDomain({ sizeMiB: 32 });
    await lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0x5a });
    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: false });
    const backup = await onceStackUp(() => execa("node", [vmbs, "backup", "--domain", dom.name, "--timeout", "120"], { env, reject: false }));
    assert.equal(backup.exitCode, 0, backup.stderr);
    const digest = await lab.diskDigest(dom.name);

    const as = `${dom.name}-i`;
    const started = await run(["--domain", dom.name, "--as", as]);
    assert.equal(started.exitCode, 0, started.stderr);
    assert.match(started.stderr, /^started/m);
    const reply = instantRestoreReplySchema.parse(JSON.parse(started.stdout));
    made.push({ name: as, files: [reply.disks[0]!.image, reply.disks[0]!.overlay.replace(/\/[^/]+$/, "")] });
    assert.match((await virsh(["domstate", as])).stdout, /running/);

    const finished = await run(["--finish", as, "--yes"]);
    assert.equal(finished.exitCode, 0, finished.stderr);
    assert.match(finished.stderr, /pivot vda/);
    const images = instantFinishReplySchema.parse(JSON.parse(finished.stdout)).images;
    assert.deepEqual(images, [reply.disks[0]!.image]);
    await virsh(["destroy", as]);
    assert.equal(await imageDigest(images[0]!), digest, "the finished image is the backed-up disk");
    assert.equal(await stat(reply.disks[0]!.overlay).then(() => true, () => false), false, "the overlay is gone");

    const other = `${dom.name}-j`;
    const second = await run(["--domain", dom.name, "--as", other, "--checkpoint", "0"]);
    assert.equal(second.exitCode, 0, second.stderr);
    const secondReply = instantRestoreReplySchema.parse(JSON.parse(second.stdout));
    made.push({ name: other, files: [secondReply.disks[0]!.overlay.replace(/\/[^/]+$/, "")] });
    const abandoned = await run(["--abandon", other, "--yes", "--json"]);
    assert.equal(abandoned.exitCode, 0, abandoned.stderr);
    assert.ok(instantAbandonReplySchema.parse(JSON.parse(abandoned.stdout)).removed.length > 0);
    assert.notEqual((await virsh(["domstate", other])).exitCode, 0, "the abandoned domain is gone");
    assert.equal(await stat(secondReply.disks[0]!.overlay).then(() => true, () => false), false);
    const unknown = await run(["--abandon", other, "--yes"]);
    assert.equal(unknown.exitCode, 1);
    assert.match(unknown.stdout, /no instant VM named/);
  });
});

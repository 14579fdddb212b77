import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { mirrorEventSchema } from "@vmbs/contracts";
import { createLab, runOnPty, vmbsProcessEnv, waitFor, type Lab } from "@vmbs/lab";
import { onceStackUp } from "./testing/once-stack-up.js";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

describe("vmbs start with RSYNC_BACKUP_PATH, and vmbs mirror", () => {
  let lab: Lab;
  let env: Record<string, string>;
  let stack: ResultPromise | undefined;
  before(async () => {
    lab = await createLab();
    env = { ...(await vmbsProcessEnv(lab, "mirrorcli")), RSYNC_BACKUP_PATH: await lab.tempDir("mirror-") };
  });
  after(async () => {
    stack?.kill("SIGKILL");
    await lab?.cleanup();
  });

  it("`vmbs mirror-service` without RSYNC_BACKUP_PATH is refused with one line (exit 78)", async () => {
    const r = await execa("node", [vmbs, "mirror-service"], { env: { ...env, RSYNC_BACKUP_PATH: "" }, reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 78);
    assert.match(r.stderr, /^vmbs: RSYNC_BACKUP_PATH is not set/);
  });

  it("with bus credentials, `vmbs start` mirrors each backup as the mirror role, and `vmbs mirror` syncs on demand", async () => {
    await execa("node", [vmbs, "auth", "init"], { env });
    const dom = await lab.createDomain({ name: `${lab.domainPrefix}mcli-${Date.now().toString(16)} a b`, sizeMiB: 64 });
    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: false });
    const backup = () => execa("node", [vmbs, "backup", "--domain", dom.name, "--timeout", "120"], { env, reject: false });
    const first = await onceStackUp(backup, 90_000);
    assert.equal(first.exitCode, 0, first.stderr);
    const copy = join(env.RSYNC_BACKUP_PATH!, dom.name);
    await waitFor(async () => (await readdir(copy)).includes("vda.full.data"), { timeoutMs: 60_000, what: "the mirror copy after the backup" });
    const local = await stat(join(env.LOCAL_BACKUP_PATH!, dom.name, "vda.full.data"));
    const mirrored = await stat(join(copy, "vda.full.data"));
    assert.equal(mirrored.size, local.size);
    assert.equal(mirrored.mtimeMs, local.mtimeMs, "rsync -a keeps the mtime");

    const r = await execa("node", [vmbs, "mirror", "--domain", dom.name, "--timeout", "60"], { env, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    const e = mirrorEventSchema.parse(JSON.parse(r.stdout.trim().split("\n").at(-1)!));
    assert.equal(e.type, "completed");
    assert.equal(e.trigger, "command");
    assert.ok((e.verifiedFiles ?? 0) >= 4);
    const all = await execa("node", [vmbs, "mirror", "--timeout", "60"], { env, reject: false });
    assert.equal(all.exitCode, 0, all.stderr);
    assert.match(all.stdout, /"type":"completed"/);

    // On a terminal: a line per step a person reads, the start included; no JSON.
    const tty = await runOnPty("node", [vmbs, "mirror", "--domain", dom.name, "--timeout", "60"], { ...env, NO_COLOR: "1" }, []);
    assert.equal(tty.exitCode, 0, tty.out);
    assert.match(tty.out, new RegExp(`mirror started  ${dom.name}  to [^\\r\\n]+\\r?\\n[^\\r\\n]*mirror completed  ${dom.name}  to [^·]+ · [\\d.]+ (B|KiB|MiB) sent`), tty.out);
    assert.doesNotMatch(tty.out, /"type"/, "no JSON on a terminal");

    stack.kill("SIGTERM");
    const exit = await stack;
    assert.equal(exit.exitCode, 0, String(exit.stderr).slice(-800));
    assert.match(String(exit.stdout), /"role":"mirror-mirrorcli"/);
    assert.doesNotMatch(String(exit.stdout), /permission/i, "no permission was refused to the mirror");
  });
});

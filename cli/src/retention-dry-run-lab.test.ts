import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { execa, type ResultPromise } from "execa";
import { createLab, hashTree, ignoredListExcept, vmbsProcessEnv, waitFor, type Lab, type LabDomain } from "@vmbs/lab";

/*
 * Issue 18 point 5 on a real stack (`vmbs start` with its agent and mirror) and a lab domain: `vmbs retention
 * --dry-run` prints what retention, the next backup and the next mirror sync would archive and delete, changes
 * not one byte locally or on the mirror, and then retention, backup and sync do exactly what it said.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "hdry";

type Line = Record<string, unknown> & { type: string; domain?: string; step?: string; runId?: string; wouldArchiveTo?: string; wouldPrune?: string[] };

describe("vmbs retention --dry-run on a real agent and mirror (lab)", { timeout: 600_000 }, () => {
  let lab: Lab;
  let env: Record<string, string>;
  let stack: ResultPromise | undefined;
  let dom: LabDomain;
  const run = async (...args: string[]) => {
    const r = await execa("node", [vmbs, ...args], { env, reject: false, timeout: 300_000 });
    const lines = r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Line);
    return { ...r, lines };
  };
  const cptLength = async (root: string) => (JSON.parse(await readFile(join(root, dom.name, `${dom.name}.cpt`), "utf8")) as unknown[]).length;
  const archive = (day: string) => `${dom.name}.2020-01-${day}+00:00:00.0000000000`;

  before(async () => {
    lab = await createLab();
    dom = await lab.createDomain({ sizeMiB: 64 });
    env = {
      ...(await vmbsProcessEnv(lab, host)),
      VM_IGNORED_LIST: await ignoredListExcept(lab.uri, [dom.name]),
      BACKUP_SCHEDULE: "0 0 1 1 *",
      RSYNC_BACKUP_PATH: await lab.tempDir("mirror-"),
      MAX_BACKUPS_PER_CHAIN: "2",
      LOCAL_BACKUP_CHAINS_TO_KEEP: "1",
      RSYNC_BACKUP_CHAINS_TO_KEEP: "1",
      TZ: "UTC",
    };
    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: 10_000 });
  });
  after(async () => {
    stack?.kill("SIGTERM");
    await stack;
    await lab?.cleanup();
  });

  it("prints the local and the mirror plan, touches nothing, and the real runs then do exactly that", async () => {
    const root = env.LOCAL_BACKUP_PATH!;
    const mirror = env.RSYNC_BACKUP_PATH!;
    // A chain of MAX_BACKUPS_PER_CHAIN=2 checkpoints: the next backup archives it.
    await waitFor(
      async () => {
        const r = await run("backup", "--domain", dom.name, "--timeout", "240");
        if (r.exitCode === 69) return undefined;
        assert.equal(r.exitCode, 0, r.stderr);
        return (await cptLength(root)) === 2 ? true : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 1000, what: "a chain of 2 checkpoints" },
    );
    // The mirror idle and its copy in sync, and still so 3 s later with no new sync: one still due would act on what follows.
    const mirrorSettled = async (): Promise<number | undefined> => {
      const history = (await run("events", "--host", host, "--since", "1h")).lines.map((l) => l.event as Line);
      const syncs = history.filter((e) => e.domain === dom.name && "target" in e);
      const ended = new Set(syncs.filter((e) => e.type !== "started").map((e) => e.runId));
      const idle = syncs.every((e) => e.type !== "started" || ended.has(e.runId));
      const inSync = isDeepStrictEqual(await hashTree(join(mirror, dom.name)).catch(() => ({})), await hashTree(join(root, dom.name)));
      return idle && inSync && syncs.length > 0 ? syncs.length : undefined;
    };
    for (let seen = -1; ; ) {
      const now = await waitFor(mirrorSettled, { timeoutMs: 180_000, intervalMs: 1000, what: "the mirror idle and its copy in sync" });
      if (now === seen) break;
      seen = now;
      await new Promise((r) => setTimeout(r, 3_000));
    }
    // Three older archives beside the chain, two on the mirror; the mirror copy made to hold another chain.
    for (const day of ["01", "02", "03"]) await execa("cp", ["-a", join(root, dom.name), join(root, archive(day))]);
    for (const day of ["01", "02"]) await execa("cp", ["-a", join(mirror, dom.name), join(mirror, archive(day))]);
    const t = Date.UTC(2021, 0, 1) / 1000;
    await utimes(join(mirror, dom.name, "vda.full.data"), t, t);

    const localBefore = await hashTree(root);
    const mirrorBefore = await hashTree(mirror);
    const dry = await run("retention", "--dry-run", "--domain", dom.name, "--timeout", "120");
    assert.equal(dry.exitCode, 0, `${dry.stderr}${dry.stdout}`);
    assert.deepEqual(await hashTree(root), localBefore, "the local backup root is byte for byte unchanged");
    assert.deepEqual(await hashTree(mirror), mirrorBefore, "the mirror is byte for byte unchanged");

    const chain = dry.lines.filter((l) => !("runId" in l));
    assert.ok(chain.every((l) => l.type === "planned" && l.domain === dom.name), dry.stdout);
    const steps = chain.map((l) => l.step ?? "");
    assert.deepEqual(steps.slice(0, 3), [`would delete ${archive("02")}`, `would delete ${archive("01")}`, "would keep 1 archive(s)"]);
    const wouldArchive = /^would archive \S+ → (\S+) at the next backup$/.exec(steps[3] ?? "");
    assert.ok(wouldArchive, dry.stdout);
    assert.deepEqual(steps.slice(4), [`would delete ${archive("03")} after that archive`]);

    const [plan, ...more] = dry.lines.filter((l) => "runId" in l);
    assert.equal(more.length, 0, dry.stdout);
    assert.equal(plan?.type, "planned");
    assert.match(plan?.wouldArchiveTo ?? "", new RegExp(`^${dom.name.replace(/[.]/g, "\\.")}\\.2021-01-01\\+00:00:00\\.\\d{10}$`));
    assert.deepEqual(plan?.wouldPrune, [archive("02"), archive("01")]);

    // What it said is what happens: retention now, then the backup's rotation and retention, then the mirror's sync.
    const retention = await run("retention", "--domain", dom.name, "--timeout", "120");
    assert.equal(retention.exitCode, 0, retention.stderr);
    assert.deepEqual(retention.lines.filter((l) => l.type === "pruned").map((l) => l.step), [`delete-archive ${archive("02")}`, `delete-archive ${archive("01")}`]);
    const backup = await run("backup", "--domain", dom.name, "--timeout", "240");
    assert.equal(backup.exitCode, 0, backup.stderr);
    const names = await readdir(root);
    assert.ok(names.includes(wouldArchive[1]!) && !names.includes(archive("03")), names.join(", "));
    await waitFor(
      async () => {
        const m = await readdir(mirror);
        return m.includes(plan!.wouldArchiveTo!) && !m.includes(archive("01")) && !m.includes(archive("02")) ? true : undefined;
      },
      { timeoutMs: 120_000, what: "the mirror's sync to archive and prune as planned" },
    );
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { archiveFolderName } from "@vmbs/chain";
import { hashTree } from "@vmbs/lab";
import { applyRetention } from "./apply-retention.js";
import { planRetention } from "./plan-retention.js";
import { rotateChain } from "./rotate-chain.js";
import { captureDeps, DAY, writeChain } from "../testing/chain-fixture.js";

const NOW = Date.UTC(2024, 5, 15, 12);

/* Issue 18 point 5: the dry run says what retention and the next rotation would do, on real folders, and does none of it. */

describe("retention dry run on real folders", () => {
  let base: string;
  let n = 0;
  const freshRoot = async () => {
    const root = join(base, `root-${n++}`);
    await mkdir(root);
    return root;
  };
  before(async () => (base = await mkdtemp(join(tmpdir(), "vmbs-plan-retention-"))));
  after(async () => rm(base, { recursive: true, force: true }));

  /** Five weekly archives of vm1 (newest first) and an active chain of `points` checkpoints. */
  async function fiveArchives(root: string, points: number): Promise<string[]> {
    const names: string[] = [];
    for (let w = 5; w >= 1; w--) {
      const t0 = NOW - w * 7 * DAY;
      const archive = archiveFolderName("vm1", t0, "UTC");
      await writeChain(root, archive, "vm1", { points: [t0, t0 + DAY] });
      names.unshift(archive);
    }
    await writeChain(root, "vm1", "vm1", { points: Array.from({ length: points }, (_, i) => NOW - (points - i) * 3_600_000) });
    return names;
  }

  it("announces every deletion and the coming archive as planned, changes no byte, and then happens exactly so", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root, 3);
    const { deps, events } = captureDeps(root, NOW);
    const before = await hashTree(root);

    const plan = await planRetention(deps, { domain: "vm1", keep: 2, maxBackupsPerChain: 3, trigger: "command", requestId: "dry" });
    assert.deepEqual(await hashTree(root), before, "the dry run changed nothing in the backup root");
    assert.deepEqual(plan.wouldDelete, archives.slice(2));
    assert.deepEqual(plan.wouldKeep, archives.slice(0, 2));
    assert.equal(plan.wouldArchiveTo, archiveFolderName("vm1", NOW - 3 * 3_600_000, "UTC"), "named from the chain's oldest file, as the archive would be");
    assert.deepEqual(plan.wouldDeleteAfterRotation, [archives[1]], "one archive more after that archive: the second newest goes then");

    assert.ok(events.every((e) => e.type === "planned" && e.trigger === "command" && e.requestId === "dry" && e.domain === "vm1"), JSON.stringify(events));
    const steps = events.map((e) => e.step);
    assert.deepEqual(steps, [
      ...archives.slice(2).map((a) => `would delete ${a}`),
      "would keep 2 archive(s)",
      `would archive vm1 → ${plan.wouldArchiveTo} at the next backup`,
      `would delete ${archives[1]} after that archive`,
    ]);
    for (const e of events.filter((e) => e.step?.startsWith("would delete"))) {
      assert.match(e.reason, /^dry run, nothing deleted: LOCAL_BACKUP_CHAINS_TO_KEEP=2: older than/);
      assert.deepEqual(e.folders, [e.step!.split(" ")[2]]);
    }
    assert.match(events.find((e) => e.step?.startsWith("would archive"))!.reason, /the chain holds 3 checkpoints, MAX_BACKUPS_PER_CHAIN=3/);

    // What the dry run said is what retention and rotation then do.
    const applied = await applyRetention(deps, { domain: "vm1", keep: 2 });
    assert.deepEqual(applied.deleted, plan.wouldDelete);
    const rotated = await rotateChain(deps, { domain: "vm1", keep: 2, maxBackupsPerChain: 3 });
    assert.equal(rotated.archive, plan.wouldArchiveTo);
    assert.deepEqual(rotated.retention?.deleted, plan.wouldDeleteAfterRotation);
  });

  it("says so when nothing would be deleted and the chain would stay active", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root, 2);
    const { deps, events } = captureDeps(root, NOW);
    const before = await hashTree(root);
    const plan = await planRetention(deps, { domain: "vm1", keep: 0, maxBackupsPerChain: 3 });
    assert.deepEqual(await hashTree(root), before);
    assert.deepEqual(plan.wouldDelete, []);
    assert.deepEqual(plan.wouldKeep, archives);
    assert.equal(plan.wouldArchiveTo, undefined);
    assert.deepEqual(
      events.map((e) => [e.type, e.trigger, e.step]),
      [
        ["planned", "retention", "would delete nothing"],
        ["planned", "retention", "would keep vm1 as the active chain at the next backup"],
      ],
    );
    assert.match(events[0]!.reason, /keeps all 5 archived chain\(s\) of vm1 \(kept: .*LOCAL_BACKUP_CHAINS_TO_KEEP=0 keeps every archived chain/);
    assert.match(events[1]!.reason, /the chain holds 2 of 3 checkpoints/);
  });
});

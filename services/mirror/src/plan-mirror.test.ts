import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MirrorEventInput } from "@vmbs/contracts";
import { archiveChainFolder, archiveFolderName } from "@vmbs/chain";
import { loadConfig, parseDomainPolicies, policyFor } from "@vmbs/config";
import { hashTree } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { parseMirrorTarget } from "./mirror-target.js";
import { createMirrorSync } from "./sync-chains.js";
import { chainFolder } from "./testing/fixtures.js";

/* Issue 18 point 5: the mirror's dry run says what the next sync would archive and delete, and does none of it (real rsync, local target). */

describe("mirror dry run (real rsync, local target)", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "vmbs-mirror-plan-"))));
  after(async () => rm(dir, { recursive: true, force: true }));

  it("plans the archive of a rotated chain's copy and the mirror retention after it, changes no byte, and the sync then does exactly that", async () => {
    const root = join(dir, "backups");
    const target = join(dir, "mirror");
    await mkdir(target, { recursive: true });
    await chainFolder(join(root, "db1"), "db1", 1_760_000_000);
    await chainFolder(join(root, "web1"), "web1", 1_760_000_000);
    const config = loadConfig({ HOST_ID: "hvm", LOCAL_BACKUP_PATH: root, RSYNC_BACKUP_PATH: target, TZ: "UTC" });
    const policies = parseDomainPolicies('domains:\n  - match: "db*"\n    mirrorChainsToKeep: 2\n  - match: "web*"\n    mirror: false\n', "policy.yaml");
    const announced: MirrorEventInput[] = [];
    const sync = createMirrorSync({
      config,
      policyOf: (domain) => policyFor(policies, config, domain),
      targets: [parseMirrorTarget(target)],
      ssh: undefined,
      guard: (_domain, run) => run(new AbortController().signal),
      announce: async (e) => void announced.push(e),
      logger: createLogger({ name: "test", level: "silent" }),
    });
    try {
      assert.equal((await sync.syncDomain("db1", "command"))[0]?.type, "completed");
      const same = await sync.planDomain("db1", "same");
      assert.deepEqual(same.map((e) => [e.type, e.wouldArchiveTo, e.wouldPrune]), [["planned", undefined, undefined]]);
      assert.match(same[0]!.reason ?? "", /^dry run: the mirror copy holds the same chain .* nothing is archived or deleted on the mirror$/);

      // Three older archives on the mirror; the local chain rotates and a new one begins.
      const old = [1, 2, 3].map((d) => archiveFolderName("db1", Date.UTC(2025, 0, d), "UTC"));
      for (const [i, name] of old.entries()) await chainFolder(join(target, name), "db1", Date.UTC(2025, 0, i + 1) / 1000);
      const localArchive = await archiveChainFolder(root, "db1", "UTC");
      await chainFolder(join(root, "db1"), "db1", 1_760_100_000);

      const mirrorBefore = await hashTree(target);
      const localBefore = await hashTree(root);
      const [plan, ...more] = await sync.planDomain("db1", "dry");
      assert.equal(more.length, 0, "one target, one answer");
      assert.equal(plan?.type, "planned");
      assert.equal(plan?.requestId, "dry");
      assert.equal(plan?.wouldArchiveTo, localArchive, "the copy would be archived under its local twin's name");
      assert.deepEqual(plan?.wouldPrune, [old[1], old[0]], "after that archive the newest 2 stay: the two oldest would go");
      assert.match(plan?.reason ?? "", /another chain .* archives the mirror copy as .*, then deletes 2 mirror archive\(s\) beyond the newest 2/);
      assert.deepEqual(await hashTree(target), mirrorBefore, "the mirror is byte for byte unchanged");
      assert.deepEqual(await hashTree(root), localBefore, "the local root is byte for byte unchanged");
      assert.ok(announced.some((e) => e.requestId === "dry" && e.type === "planned"), "the plan is announced");
      assert.ok(!announced.some((e) => e.requestId === "dry" && e.type !== "planned"), "a dry run starts no sync");

      const [done] = await sync.syncDomain("db1", "command");
      assert.equal(done?.type, "completed", done?.reason);
      assert.equal(done?.archivedTo, plan?.wouldArchiveTo);
      assert.deepEqual(done?.pruned, plan?.wouldPrune);

      const all = await sync.planAll("all");
      assert.deepEqual(all.map((e) => [e.domain, e.type]), [["db1", "planned"], ["web1", "planned"]]);
      assert.match(all[1]!.reason ?? "", /not mirrored \(its policy in VMBS_POLICY_FILE says mirror: false\)/);
    } finally {
      sync.stop();
    }
  });
});

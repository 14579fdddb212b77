import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MirrorEventInput } from "@vmbs/contracts";
import { loadConfig, parseDomainPolicies, policyFor } from "@vmbs/config";
import { createLogger } from "@vmbs/logger";
import { parseMirrorTarget } from "./mirror-target.js";
import { createMirrorSync } from "./sync-chains.js";

/* Issue 18: a domain's policy entry decides whether it is mirrored (real files, real rsync into a local target). */

describe("mirror per-domain policy (real rsync, local target)", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "vmbs-mirror-policy-"))));
  after(async () => rm(dir, { recursive: true, force: true }));

  it("mirrors a domain its policy leaves on, and answers a command for one with mirror: false without copying it", async () => {
    const root = join(dir, "backups");
    const target = join(dir, "mirror");
    await mkdir(target, { recursive: true });
    for (const domain of ["db1", "web1"]) {
      await mkdir(join(root, domain), { recursive: true });
      await writeFile(join(root, domain, `${domain}.cpt`), JSON.stringify(["virtnbdbackup.0"]));
      await writeFile(join(root, domain, "vda.full.data"), `data of ${domain}`);
    }
    const config = loadConfig({ HOST_ID: "hvm", LOCAL_BACKUP_PATH: root, RSYNC_BACKUP_PATH: target });
    const policies = parseDomainPolicies('domains:\n  - match: "web*"\n    mirror: false\n', "policy.yaml");
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
      const all = await sync.syncAll("schedule");
      assert.deepEqual(all.map((e) => [e.domain, e.type]), [["db1", "completed"]], "a scheduled run skips web1 without a word");
      assert.deepEqual(await readdir(target), ["db1"]);

      const [refusal] = await sync.syncDomain("web1", "command", "ask-web1");
      assert.equal(refusal?.type, "failed");
      assert.equal(refusal?.requestId, "ask-web1");
      assert.match(refusal?.reason ?? "", /web1 is not mirrored: its policy \(VMBS_POLICY_FILE\) says mirror: false/);
      assert.ok(announced.some((e) => e.requestId === "ask-web1" && e.type === "failed"), "the refusal is announced");
      assert.deepEqual(await readdir(target), ["db1"], "nothing of web1 was copied");
    } finally {
      sync.stop();
    }
  });
});

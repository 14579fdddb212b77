import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArchiveFolderName } from "@vmbs/chain";
import { completed, createChainTestKit, MiB, outcome, type ChainTestKit } from "@vmbs/lab";

/* Issue 18, per-domain policy: each domain keeps its own chain length and retention, and its hooks run around
 * its backups (argv, environment, a failing pre hook fails the backup and leaves the chain as it was). */

describe("per-domain policy on real backups (real lab)", { timeout: 600_000 }, () => {
  let k: ChainTestKit;
  before(async () => {
    k = await createChainTestKit();
  });
  afterEach(async () => k.stopAgents());
  after(async () => k?.close());

  it("two domains keep their own chain lengths and counts; hooks run with the backup's facts; a failing pre hook fails the backup", async () => {
    const host = "pol1";
    const ev = k.events(host);
    const id = randomBytes(3).toString("hex");
    const db = await k.lab.createDomain({ name: `${k.lab.domainPrefix}db-${id}` });
    const web = await k.lab.createDomain({ name: `${k.lab.domainPrefix}web-${id}` });
    const dir = await k.lab.tempDir("policy-");
    const hookLog = join(dir, "hooks.log");
    const policyFile = join(dir, "policy.yaml");
    const record = (what: string) => ["/bin/sh", "-c", `echo "${what}" >> ${hookLog}`];
    const policy = (webPre: string) => `
domains:
  - match: "${k.lab.domainPrefix}db-*"
    maxBackupsPerChain: 2
    chainsToKeep: 1
    hooks:
      pre:  {argv: ${JSON.stringify(record("pre $VMBS_HOST $VMBS_DOMAIN $VMBS_LEVEL"))}}
      post: {argv: ${JSON.stringify(record("post $VMBS_DOMAIN $VMBS_OUTCOME $VMBS_CHECKPOINT"))}}
  - match: "${k.lab.domainPrefix}web-*"
    maxBackupsPerChain: 3
    chainsToKeep: 2
${webPre}`;
    await writeFile(policyFile, policy(""));
    // The environment says otherwise: every entry's own value must win.
    await k.agentFor(host, [db.name, web.name], { VMBS_POLICY_FILE: policyFile, MAX_BACKUPS_PER_CHAIN: "30", LOCAL_BACKUP_CHAINS_TO_KEEP: "5" });
    await ev.waitBackup(completed(db.name), 90_000);
    await ev.waitBackup(completed(web.name), 90_000);

    let n = 0;
    const backup = async (domain: string) => {
      n += 1;
      await k.lab.writeGuest(domain, { offset: n * MiB, length: MiB, pattern: n });
      k.backup(host, { domain, requestId: `p${n}` });
      return ev.waitBackup(outcome(`p${n}`));
    };
    const checkpointOf = async (domain: string) => {
      const e = await backup(domain);
      assert.equal(e.type, "completed", JSON.stringify(e));
      return e.type === "completed" ? e.checkpoint : "";
    };
    // db: 2 per chain, so every second backup starts a new chain; web: 3 per chain.
    assert.deepEqual([await checkpointOf(db.name), await checkpointOf(db.name), await checkpointOf(db.name), await checkpointOf(db.name)], ["virtnbdbackup.1", "virtnbdbackup.0", "virtnbdbackup.1", "virtnbdbackup.0"]);
    assert.deepEqual([await checkpointOf(web.name), await checkpointOf(web.name), await checkpointOf(web.name)], ["virtnbdbackup.1", "virtnbdbackup.2", "virtnbdbackup.0"]);
    const archives = async (domain: string) => (await k.archivesOf(domain)).filter((a) => parseArchiveFolderName(domain, a));
    assert.equal((await archives(db.name)).length, 1, "db keeps its 1 archive (chainsToKeep: 1), not the environment's 5");
    assert.equal((await archives(web.name)).length, 1, "web has archived once so far");

    // The hooks ran around each of db's backups, in order, with the backup's facts; web has none.
    const lines = (await readFile(hookLog, "utf8")).trim().split("\n");
    assert.equal(lines.length, 10, lines.join("\n"));
    assert.equal(lines[0], `pre ${host} ${db.name} full`, "the start-up full");
    assert.equal(lines[1], `post ${db.name} completed virtnbdbackup.0`);
    assert.equal(lines[2], `pre ${host} ${db.name} inc`);
    assert.equal(lines[3], `post ${db.name} completed virtnbdbackup.1`);
    assert.ok(lines.every((l) => !l.includes(web.name)));
    const last = ev.backup.find((e) => e.requestId === "p4" && e.type === "completed");
    assert.ok(last?.type === "completed" && last.hooks?.length === 2 && last.hooks.every((h) => h.ok), `the event lists the hooks: ${JSON.stringify(last)}`);

    // A failing pre hook, added while the agent runs (the file is re-read on change): web's backup fails with
    // the hook's words, and its chain stays as it was.
    const failing = `    hooks:\n      pre: {argv: ["/bin/sh", "-c", "echo quiesce refused by the database >&2; exit 3"], timeoutSeconds: 30}\n`;
    await writeFile(policyFile, policy(failing));
    await new Promise((r) => setTimeout(r, 3_000)); // the file is looked at every 2 s
    const before = await k.hashTree(join(k.backupRoot, web.name));
    const failed = await backup(web.name);
    assert.equal(failed.type, "failed", JSON.stringify(failed));
    assert.match(failed.type === "failed" ? failed.reason : "", /pre hook "\/bin\/sh" exited with code 3: quiesce refused by the database; the backup did not run/);
    assert.deepEqual(failed.type === "failed" && failed.hooks?.map((h) => [h.phase, h.ok, h.exitCode]), [["pre", false, 3]]);
    assert.deepEqual(await k.hashTree(join(k.backupRoot, web.name)), before, "the chain is untouched");
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { createLab, type Lab } from "@vmbs/lab";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

/* Issue 18: `vmbs policy` prints what applies to each domain, from VMBS_POLICY_FILE and the environment (a real process, real libvirt). */

describe("vmbs policy, as a user runs it", { timeout: 300_000 }, () => {
  let dir: string;
  let lab: Lab;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmbs-policy-cli-"));
    lab = await createLab();
  });
  after(async () => {
    await lab?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  const run = (args: string[], env: Record<string, string>) =>
    execa("node", [vmbs, "policy", ...args], { env: { HOST_ID: "hv1", LOGFILE_PATH: join(dir, "vmbs.log"), ...env }, reject: false, timeout: 60_000 });

  it("shows each named domain's entry or the environment, as a table and as JSON", async () => {
    const file = join(dir, "policy.yaml");
    await writeFile(file, 'domains:\n  - match: "db*"\n    schedule: "*/30 * * * *"\n    maxBackupsPerChain: 48\n    chainsToKeep: {daily: 7}\n    rpoMinutes: 90\n    hooks:\n      pre: {argv: ["/usr/local/bin/quiesce"]}\n');
    const env = { VMBS_POLICY_FILE: file, BACKUP_SCHEDULE: "0 3 * * *", MAX_BACKUPS_PER_CHAIN: "30" };
    const json = await run(["--domain", "db1", "--domain", "mail", "--json"], env);
    assert.equal(json.exitCode, 0, json.stderr);
    const out = JSON.parse(json.stdout) as { file: string; domains: Array<Record<string, unknown>> };
    assert.equal(out.file, file);
    assert.deepEqual(out.domains.map((d) => [d.domain, d.matchedBy, d.schedule, d.maxBackupsPerChain, d.rpoMinutes]), [
      ["db1", "db*", "*/30 * * * *", 48, 90],
      ["mail", undefined, "0 3 * * *", 30, 1560],
    ]);
    const table = await run(["--domain", "db1", "--domain", "mail"], env);
    assert.equal(table.exitCode, 0, table.stderr);
    assert.match(table.stdout, /^db1\s+match db\*\s+\*\/30 \* \* \* \*\s+48\s+1 \+ 7d\/0w\/0m\s+off\s+1 h 30 min\s+pre$/m);
    assert.match(table.stdout, /^mail\s+\(environment\)\s+0 3 \* \* \*\s+30\s+1\s+off\s+26 h\s+-$/m);
  });

  it("without --domain lists the domains libvirt has", async () => {
    const dom = await lab.createDomain({ running: false });
    const r = await run(["--json"], { LIBVIRT_URI: lab.uri });
    assert.equal(r.exitCode, 0, r.stderr);
    const names = (JSON.parse(r.stdout) as { domains: Array<{ domain: string }> }).domains.map((d) => d.domain);
    assert.ok(names.includes(dom.name), names.join(", "));
  });

  it("a bad policy file: one line per bad entry, exit 78", async () => {
    const file = join(dir, "bad.yaml");
    await writeFile(file, "domains:\n  - match: a\n    rpoMinutes: 0\n  - match: b\n    hooks: {pre: \"quiesce; rm -rf /\"}\n");
    const r = await run(["--domain", "a"], { VMBS_POLICY_FILE: file });
    assert.equal(r.exitCode, 78, r.stderr);
    assert.match(r.stderr, /domains\[0\] \(match "a"\) rpoMinutes/);
    assert.match(r.stderr, /domains\[1\] \(match "b"\) hooks\.pre/);
  });
});

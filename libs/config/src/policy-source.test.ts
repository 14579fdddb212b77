import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPolicySource } from "./policy-source.js";
import { PolicyFileError, type DomainPolicies } from "./domain-policy.js";

const until = async (done: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return done();
};
/** Writes and moves the mtime on by a second, so a change within the same second is seen. */
async function rewrite(path: string, text: string, step: number): Promise<void> {
  await writeFile(path, text);
  const t = new Date(Date.now() + step * 1_000);
  await utimes(path, t, t);
}

describe("policy file kept current (real files, real SIGHUP)", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "vmbs-policy-"))));
  after(async () => rm(dir, { recursive: true, force: true }));

  it("no file configured: no per-domain policy", async () => {
    const source = await openPolicySource({ path: undefined });
    assert.deepEqual(source.current().domains, []);
    source.close();
  });

  it("a bad or missing file stops the start with its problem", async () => {
    await assert.rejects(openPolicySource({ path: join(dir, "missing.yaml") }), (err: unknown) => err instanceof PolicyFileError && /cannot be read: ENOENT/.test(err.message));
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "domains:\n  - match: a\n    rpoMinutes: zero\n");
    await assert.rejects(openPolicySource({ path: bad }), /domains\[0\] \(match "a"\) rpoMinutes/);
  });

  it("reloads a changed file, keeps the last good version when the change is bad, and reloads on SIGHUP", async () => {
    const path = join(dir, "policy.yaml");
    await writeFile(path, "domains:\n  - match: a\n    maxBackupsPerChain: 5\n");
    const reloads: DomainPolicies[] = [];
    const errors: PolicyFileError[] = [];
    const source = await openPolicySource({ path, pollMs: 50, onReload: (p) => reloads.push(p), onError: (e) => errors.push(e) });
    try {
      assert.equal(source.current().domains[0]!.maxBackupsPerChain, 5);

      await rewrite(path, "domains:\n  - match: a\n    maxBackupsPerChain: 7\n", 1);
      assert.ok(await until(() => source.current().domains[0]?.maxBackupsPerChain === 7), "the change is in effect");

      await rewrite(path, "domains:\n  - match: a\n    maxBackupsPerChain: seven\n", 2);
      assert.ok(await until(() => errors.length === 1), "the bad change is reported");
      assert.match(errors[0]!.message, /maxBackupsPerChain/);
      assert.equal(source.current().domains[0]!.maxBackupsPerChain, 7, "the last good version stays");

    } finally {
      source.close();
    }
  });

  it("reloads on SIGHUP, without waiting for the poll", async () => {
    const path = join(dir, "hup.yaml");
    await writeFile(path, "domains:\n  - match: a\n    maxBackupsPerChain: 5\n");
    const source = await openPolicySource({ path, pollMs: 600_000 });
    try {
      await rewrite(path, "domains:\n  - match: a\n    maxBackupsPerChain: 9\n", 1);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(source.current().domains[0]!.maxBackupsPerChain, 5, "not polled within the test");
      process.kill(process.pid, "SIGHUP");
      assert.ok(await until(() => source.current().domains[0]?.maxBackupsPerChain === 9), "SIGHUP reloads");
    } finally {
      source.close();
    }
  });
});

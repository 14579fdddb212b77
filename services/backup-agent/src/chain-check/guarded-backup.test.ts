import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { BackupFailed } from "@vmbs/contracts";
import type { ChainEventInput } from "@vmbs/bus";
import { LibvirtError } from "@vmbs/virt";
import { testLogger } from "@vmbs/lab";
import type { BackupOutcome, BackupRequest } from "../backup-runner.js";
import type { CheckRequest, CheckSummary } from "./check-chain.js";
import { createGuardedBackup } from "./guarded-backup.js";

const domain = "web";
const keep: CheckSummary = { domain, plan: "keep", reason: "fine", result: "done", newChainPending: false, state: "running", archived: [] };
const failed: BackupFailed = { type: "failed", host: "hv1", domain, runId: "r1", reason: "virtnbdbackup exited with code 1: client socket is closed", at: "2026-12-07T00:00:00Z" };
const libvirtDown = () => new LibvirtError("domainState", "Failed to connect socket to '/var/run/libvirt/libvirt-sock'", 38);

/** A guarded backup over a checker that answers with `answers` in turn (an Error is thrown) and a failing engine. */
function harness(answers: Array<CheckSummary | Error>, retryDelays: number[]) {
  const checks: CheckRequest[] = [];
  const announced: ChainEventInput[] = [];
  const guarded = createGuardedBackup({
    host: "hv1",
    backupRoot: "/nonexistent-backup-root",
    checker: {
      check: async (req) => {
        checks.push(req);
        const answer = answers.shift() ?? keep;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      publish: async (e) => void announced.push(e),
      bootChanged: false,
      recordBoot: async () => {},
    },
    runBackup: async (_req: BackupRequest): Promise<BackupOutcome> => ({ ok: false, event: failed }),
    publishFailed: async () => {},
    logger: testLogger("guarded-backup-test"),
    libvirtRetryDelaysMs: retryDelays,
  });
  return { checks, announced, backup: () => guarded({ domain, level: "auto" }, true) };
}

describe("guarded backup: the check after a failed backup while libvirtd is away", () => {
  it("tries the strict check again until libvirt answers", async () => {
    const h = harness([keep, libvirtDown(), libvirtDown(), keep], [1, 1, 1]);
    await h.backup();
    assert.deepEqual(
      h.checks.map((c) => [c.trigger, c.strict === true]),
      [["before-backup", false], ["after-failure", true], ["after-failure", true], ["after-failure", true]],
    );
    assert.deepEqual(h.announced, []);
  });

  it("gives up after its tries with an attention event; the next backup checks strictly first, once", async () => {
    const h = harness([keep, libvirtDown(), libvirtDown()], [1]);
    await h.backup();
    assert.equal(h.announced.length, 1);
    assert.equal(h.announced[0]!.type, "attention");
    assert.equal(h.announced[0]!.trigger, "after-failure");
    assert.match(h.announced[0]!.reason, /could not run .*libvirt-sock.*checks its chain strictly first/);
    h.checks.length = 0;
    await h.backup();
    assert.deepEqual(
      h.checks.map((c) => [c.trigger, c.strict === true, c.cheap === true]),
      [["before-backup", true, false], ["after-failure", true, false]],
    );
    h.checks.length = 0;
    await h.backup();
    assert.deepEqual(h.checks[0] && [h.checks[0].strict === true, h.checks[0].cheap === true], [false, true]);
  });

  it("does not retry what is not libvirt's silence", async () => {
    const h = harness([keep, new Error("EIO reading the chain folder")], [1, 1]);
    await assert.rejects(h.backup(), /EIO/);
    assert.equal(h.checks.length, 2);
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { sha256File } from "@vmbs/chain";
import { type AgentHarness } from "@vmbs/lab";
import { restorePlanReplySchema, restoreRunReplySchema } from "@vmbs/contracts";
import { tpm2StatePath } from "@vmbs/virt";
import { createRestoreLabKit } from "./testing/restore-lab-kit.js";

const host = "tpmhost";

describe("TPM state (swtpm): kept at each checkpoint, restored under the right UUID", () => {
  const lab = createRestoreLabKit(host);
  const { made, events, virsh, request, imagePool } = lab;
  let h: AgentHarness;
  /** Starts the domain paused and stops it: libvirt hands its TPM state to swtpm (making one if there is none). */
  const powerCycle = async (name: string) => {
    await virsh(["start", "--paused", name]);
    await virsh(["destroy", name]);
  };

  before(async () => {
    h = await lab.start();
    await lab.startService();
  });
  after(() => lab.stop());

  it("copies the TPM state beside each checkpoint (checksummed); a new domain and an in-place restore get the state of their checkpoint, and libvirt starts them on it", async () => {
    const dom = await h.lab.createDomain({ tpm: true, running: false });
    const state = tpm2StatePath((await virsh(["domuuid", dom.name])).stdout.trim());
    const chain = join(h.backupRoot, dom.name);
    const states: string[] = [];
    for (const i of [0, 1]) {
      // A TPM cleared and made anew (its seeds are random): a state as different as a guest's changes.
      if (i > 0) {
        await rm(state);
        await powerCycle(dom.name);
      }
      h.publishRaw(JSON.stringify({ domain: dom.name, requestId: `b${i}` }));
      const done = await h.waitEvent((e) => e.requestId === `b${i}` && e.type !== "started");
      assert.equal(done.type, "completed", JSON.stringify(done));
      states.push(await sha256File(state));
      const copy = `tpm2-00.permall.virtnbdbackup.${i}`;
      assert.equal(await sha256File(join(chain, copy)), states[i], `the TPM copy of checkpoint ${i}`);
      assert.match(await readFile(join(chain, `checksums/virtnbdbackup.${i}.sha256`), "utf8"), new RegExp(`^${states[i]}  ${copy.replaceAll(".", "\\.")}$`, "m"), "the TPM copy is not checksummed");
    }
    assert.notEqual(states[0], states[1], "the TPM state changed between the checkpoints");
    await rm(state);
    await powerCycle(dom.name);
    assert.ok(!states.includes(await sha256File(state)), "the TPM state changed after the backups");

    // As a new domain: the state of checkpoint 0 under the new domain's UUID.
    const targetDir = await imagePool("tpm-restored-");
    const as = `${dom.name}-r0`;
    made.push(as);
    const copy = await request("run", { domain: dom.name, checkpoint: 0, as, targetDir, requestId: "new" });
    assert.equal(copy.error, undefined, JSON.stringify(copy.json));
    const copyState = tpm2StatePath((await virsh(["domuuid", as])).stdout.trim());
    assert.equal(restoreRunReplySchema.parse(copy.json).tpmState, copyState);
    assert.equal(await sha256File(copyState), states[0], "the new domain's TPM state is not the one of checkpoint 0");
    await powerCycle(as);
    assert.equal(await sha256File(copyState), states[0], "libvirt made a new TPM state instead of taking the restored one");
    assert.ok(events.some((e) => e.requestId === "new" && /^copy the TPM state saved at virtnbdbackup\.0/.test(e.step ?? "")), "the TPM copy was not announced");

    // In place at checkpoint 1: the domain's own state (by its UUID) replaced, the original gone afterwards.
    const plan = restorePlanReplySchema.parse((await request("plan", { domain: dom.name, inPlace: true, checkpoint: 1 })).json);
    assert.ok(plan.steps.some((s) => s.startsWith(`replace the TPM state ${state} with the copy saved at virtnbdbackup.1`)), plan.steps.join(" | "));
    const inPlace = await request("run", { domain: dom.name, inPlace: true, checkpoint: 1, requestId: "in-place" });
    assert.equal(inPlace.error, undefined, JSON.stringify(inPlace.json));
    assert.equal(restoreRunReplySchema.parse(inPlace.json).tpmState, state);
    assert.equal(await sha256File(state), states[1], "the TPM state restored in place is not the one of checkpoint 1");
    assert.deepEqual((await readdir(dirname(state))).filter((n) => n.includes(".vmbs-")), [], "a kept or staged TPM file was left");
    await powerCycle(dom.name);
    assert.equal(await sha256File(state), states[1], "libvirt did not start the domain on the restored TPM state");
  });
});

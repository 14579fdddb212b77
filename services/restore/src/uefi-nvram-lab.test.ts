import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { open, readdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { sha256File } from "@vmbs/chain";
import { imageDigest, MiB, type AgentHarness } from "@vmbs/lab";
import { restorePlanReplySchema, restoreRunReplySchema } from "@vmbs/contracts";
import { createRestoreLabKit } from "./testing/restore-lab-kit.js";

const host = "uefihost";

/** Overwrites 4 KiB of a UEFI variable store with `pattern`, as a guest changing its variables would (shut off). */
async function changeVars(path: string, pattern: number): Promise<void> {
  const file = await open(path, "r+");
  try {
    const { size } = await file.stat();
    await file.write(Buffer.alloc(4096, pattern), 0, 4096, size - 3 * 4096);
  } finally {
    await file.close();
  }
}

describe("restore: a UEFI domain's nvram comes back as it was at the checkpoint", () => {
  const lab = createRestoreLabKit(host);
  const { made, events, virsh, request, imagePool } = lab;
  let h: AgentHarness;

  before(async () => {
    h = await lab.start();
    await lab.startService();
  });
  after(() => lab.stop());

  it("backs up the nvram at each checkpoint; restores it as a new domain's own and in place, refusing to replace an nvram file another domain uses", async () => {
    const dom = await h.lab.createDomain({ firmware: "efi", running: false });
    const nvram = dom.nvramPath!;
    const chain = join(h.backupRoot, dom.name);
    const vars: string[] = [];
    const disks: string[] = [];
    for (const [i, pattern] of [0x5a, 0xa5].entries()) {
      await changeVars(nvram, pattern);
      await h.lab.writeGuest(dom.name, { offset: i * 4 * MiB, length: MiB, pattern });
      vars.push(await sha256File(nvram));
      disks.push(await h.lab.diskDigest(dom.name));
      h.publishRaw(JSON.stringify({ domain: dom.name, requestId: `b${i}` }));
      const done = await h.waitEvent((e) => e.requestId === `b${i}` && e.type !== "started");
      assert.equal(done.type, "completed", JSON.stringify(done));
      assert.equal(await sha256File(join(chain, `${basename(nvram)}.virtnbdbackup.${i}`)), vars[i], `the set's nvram copy of checkpoint ${i}`);
    }
    assert.equal(new Set(vars).size, 2, "the nvram changed between the checkpoints");
    await changeVars(nvram, 0x33);

    // As a new domain: its own nvram file, the copy of checkpoint 0.
    const targetDir = await imagePool("uefi-restored-");
    const as = `${dom.name}-r0`;
    made.push(as);
    const copy = await request("run", { domain: dom.name, checkpoint: 0, as, targetDir, requestId: "new" });
    assert.equal(copy.error, undefined, JSON.stringify(copy.json));
    const copyReply = restoreRunReplySchema.parse(copy.json);
    assert.equal(copyReply.nvram, join(targetDir, `${as}_VARS.fd`));
    assert.equal(await sha256File(copyReply.nvram!), vars[0], "the new domain's nvram is not the one of checkpoint 0");
    assert.equal(await imageDigest(copyReply.images[0]!), disks[0]);
    assert.match((await virsh(["dumpxml", as])).stdout, new RegExp(`<nvram[^>]*>${copyReply.nvram!}</nvram>`));
    assert.ok(events.some((e) => e.requestId === "new" && /^copy the UEFI variables saved at virtnbdbackup\.0/.test(e.step ?? "")), "nvram copy not announced");

    // Another domain naming the same nvram file: in place is refused, and the file stays as it is.
    const other = await h.lab.createDomain({ firmware: "efi", running: false });
    const otherXml = join(await h.lab.tempDir("uefi-xml-"), "other.xml");
    await writeFile(otherXml, (await virsh(["dumpxml", "--inactive", other.name])).stdout.replace(other.nvramPath!, nvram));
    await virsh(["define", otherXml]);
    const changed = await sha256File(nvram);
    const sharedPlan = restorePlanReplySchema.parse((await request("plan", { domain: dom.name, inPlace: true, checkpoint: 1 })).json);
    assert.match(sharedPlan.refusal ?? "", /also the one of domain/);
    const shared = await request("run", { domain: dom.name, inPlace: true, checkpoint: 1 });
    assert.equal(shared.code, "400", JSON.stringify(shared));
    assert.equal(await sha256File(nvram), changed, "a refused restore changed the shared nvram");
    // Keep the file: it is still dom's.
    await virsh(["undefine", "--keep-nvram", other.name]);

    // In place at checkpoint 1: disk and nvram both back at that point, the originals gone afterwards.
    const plan = restorePlanReplySchema.parse((await request("plan", { domain: dom.name, inPlace: true, checkpoint: 1 })).json);
    assert.equal(plan.refusal, undefined);
    assert.ok(plan.steps.some((s) => s.startsWith(`replace the UEFI variables ${nvram} with the copy saved at virtnbdbackup.1`)), plan.steps.join(" | "));
    const inPlace = await request("run", { domain: dom.name, inPlace: true, checkpoint: 1, requestId: "in-place" });
    assert.equal(inPlace.error, undefined, JSON.stringify(inPlace.json));
    assert.equal(restoreRunReplySchema.parse(inPlace.json).nvram, nvram);
    assert.equal(await sha256File(nvram), vars[1], "the nvram restored in place is not the one of checkpoint 1");
    assert.equal(await imageDigest(dom.diskPath), disks[1]);
    assert.equal((await stat(nvram)).mode & 0o777, 0o600);
    const steps = events.filter((e) => e.requestId === "in-place" && e.type === "progress").map((e) => e.step ?? "");
    assert.ok(steps.some((s) => s.startsWith(`keep ${nvram} as `)), steps.join(" | "));
    assert.deepEqual((await readdir(dirname(nvram))).filter((n) => n.startsWith(`${basename(nvram)}.vmbs-`)), [], "a kept or staged nvram file was left");
    // libvirt takes the restored file: the domain starts on it.
    await virsh(["start", "--paused", dom.name]);
    await virsh(["destroy", dom.name]);
    assert.equal(await sha256File(nvram), vars[1]);
  });
});

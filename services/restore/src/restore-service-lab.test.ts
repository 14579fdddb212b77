import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, stat, truncate, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { Svcm, type ServiceInfo } from "@nats-io/services";
import { imageDigest, waitFor, type AgentHarness } from "@vmbs/lab";
import { restorePlanReplySchema, restoreServiceName, restoreCheckpointsReplySchema, restoreRunReplySchema, restoreSetsReplySchema } from "@vmbs/contracts";
import type { RestoreServiceHandle } from "./restore-service.js";
import { createRestoreLabKit } from "./testing/restore-lab-kit.js";

const MiB = 1024 * 1024;
const host = "rsthost";

describe("restore service: a 3-checkpoint chain restored over NATS", () => {
  const lab = createRestoreLabKit(host);
  const { made, events, virsh, request, imagePool } = lab;
  let h: AgentHarness;
  let service: RestoreServiceHandle;

  before(async () => {
    h = await lab.start();
    service = await lab.startService();
  });
  after(() => lab.stop());

  it("restores checkpoints 0, 1 and 2 as new domains equal to the disk at each backup; the copy has its own UUID and MAC and starts; in place on a running domain without consent is refused, with consent on a shut-off one it restores and archives", async () => {
    const dom = await h.lab.createDomain({ sizeMiB: 64, running: false });
    // Lab domains have no NIC (and pc's pci.0 has no hotplug): a user-mode one, touching no host network, is
    // added before the start, so the copy has a MAC to change.
    const nic = join(await h.lab.tempDir("nic-"), "nic.xml");
    await writeFile(nic, "<interface type='user'><model type='virtio'/></interface>");
    await virsh(["attach-device", dom.name, "--file", nic, "--config"]);
    await virsh(["start", dom.name]);
    const digests: string[] = [];
    const writes = [0x11, 0x22, 0x33];
    for (const [i, pattern] of writes.entries()) {
      await h.lab.writeGuest(dom.name, { offset: i * 8 * MiB, length: 2 * MiB, pattern });
      h.publishRaw(JSON.stringify({ domain: dom.name, requestId: `b${i}` }));
      const done = await h.waitEvent((e) => e.requestId === `b${i}` && e.type !== "started");
      assert.equal(done.type, "completed", JSON.stringify(done));
      digests.push(await h.lab.diskDigest(dom.name));
    }
    assert.equal(new Set(digests).size, 3, "each backup saw a different disk");

    // Discoverable as a NATS micro service (`nats micro ls`), with its endpoints under the host's prefix.
    const infos: ServiceInfo[] = [];
    for await (const info of await new Svcm(h.nc).client().info(restoreServiceName)) infos.push(info);
    assert.equal(infos.length, 1);
    assert.equal(infos[0]!.metadata?.host, host);
    assert.deepEqual(infos[0]!.endpoints.map((e) => [e.subject, e.queue_group]).sort(), ["checkpoints", "instant", "instant-abandon", "instant-finish", "plan", "replicate", "replicate-plan", "run", "sets"].map((n) => [`vmbs.svc.restore.${host}.${n}`, "q"]));
    // Each endpoint names its request and reply schema (schemas/ at the repository root).
    assert.deepEqual(infos[0]!.endpoints.find((e) => e.name === "replicate-plan")?.metadata, { request_schema: "svc.restore.replicate-plan.request.schema.json", response_schema: "svc.restore.replicate-plan.reply.schema.json" });

    const sets = restoreSetsReplySchema.parse((await request("sets", { domain: dom.name })).json);
    assert.deepEqual(sets.sets.map((s) => [s.name, s.active, s.checkpoints]), [[dom.name, true, 3]]);
    const cps = restoreCheckpointsReplySchema.parse((await request("checkpoints", { domain: dom.name })).json);
    assert.deepEqual(cps.checkpoints.map((c) => [c.index, c.name, c.disks]), [0, 1, 2].map((i) => [i, `virtnbdbackup.${i}`, ["vda"]]));
    assert.ok(cps.checkpoints.every((c) => c.time !== null && c.bytes > 0));

    const targetDir = await imagePool("restored-");
    const plan = restorePlanReplySchema.parse((await request("plan", { domain: dom.name, checkpoint: 1, as: `${dom.name}-r1`, targetDir })).json);
    assert.deepEqual([plan.checkpoint, plan.disks, plan.images, plan.refusal], ["virtnbdbackup.1", ["vda"], [join(targetDir, `${dom.name}-r1.vda.qcow2`)], undefined]);
    const refusedPlan = restorePlanReplySchema.parse((await request("plan", { domain: dom.name, inPlace: true })).json);
    assert.match(refusedPlan.refusal ?? "", /running.*consent/);
    assert.deepEqual(refusedPlan.images, [dom.diskPath]);
    for (const n of [0, 1, 2]) {
      const as = `${dom.name}-r${n}`;
      made.push(as);
      const r = await request("run", { domain: dom.name, checkpoint: n, as, targetDir, requestId: `r${n}` });
      assert.equal(r.error, undefined, JSON.stringify(r.json));
      const reply = restoreRunReplySchema.parse(r.json);
      assert.equal(reply.checkpoint, `virtnbdbackup.${n}`);
      assert.equal(reply.images.length, 1);
      assert.equal(await imageDigest(reply.images[0]!), digests[n], `checkpoint ${n} restored differs from the disk at that backup`);
      assert.equal((await stat(reply.images[0]!)).mode & 0o777, 0o600, "a restored image is readable by others");
      assert.deepEqual(events.filter((e) => e.requestId === `r${n}` && e.type !== "progress").map((e) => e.type), ["started", "completed"]);
    }

    const xmlOf = async (name: string) => (await virsh(["dumpxml", name])).stdout;
    const uuid = (x: string) => /<uuid>([^<]+)<\/uuid>/.exec(x)?.[1];
    const macs = (x: string) => [...x.matchAll(/<mac address='([^']+)'/g)].map((m) => m[1]);
    const orig = await xmlOf(dom.name);
    const copy = await xmlOf(`${dom.name}-r2`);
    assert.notEqual(uuid(copy), uuid(orig));
    assert.ok(macs(orig).length > 0 && macs(copy).length === macs(orig).length);
    assert.ok(macs(copy).every((m) => !macs(orig).includes(m)), `MACs ${macs(copy).join()} reuse ${macs(orig).join()}`);
    assert.ok(!copy.includes(dom.diskPath), "the copy does not use the original's image");
    await virsh(["start", `${dom.name}-r2`]);
    assert.match((await virsh(["domstate", `${dom.name}-r2`])).stdout, /running/);

    const before = await h.lab.diskDigest(dom.name);
    const refused = await request("run", { domain: dom.name, inPlace: true, requestId: "inplace" });
    assert.equal(refused.code, "400");
    assert.match(refused.error ?? "", /running.*consent/);
    assert.match((await virsh(["domstate", dom.name])).stdout, /running/);
    assert.equal(await h.lab.diskDigest(dom.name), before, "a refused in-place restore changed the disk");
    assert.equal((await virsh(["checkpoint-list", dom.name, "--name"])).stdout.trim().split("\n").length, 3, "checkpoints kept");
    const again = restoreSetsReplySchema.parse((await request("sets", { domain: dom.name })).json);
    assert.deepEqual(again.sets.map((s) => [s.name, s.checkpoints]), [[dom.name, 3]], "the chain is neither archived nor changed");
    assert.equal(events.filter((e) => e.requestId === "inplace").at(-1)?.type, "failed");

    // Shut off and with consent: checkpoint 0 in place; stale checkpoints go, the chain is archived.
    await virsh(["destroy", dom.name]);
    const r = await request("run", { domain: dom.name, inPlace: true, consent: true, checkpoint: 0, requestId: "inplace-ok" });
    assert.equal(r.error, undefined, JSON.stringify(r.json));
    const reply = restoreRunReplySchema.parse(r.json);
    assert.deepEqual(reply.images, [dom.diskPath]);
    assert.equal(await imageDigest(dom.diskPath), digests[0], "the disk is not checkpoint 0");
    assert.equal((await stat(dom.diskPath)).mode & 0o777, 0o600, "the image restored in place is readable by others");
    assert.equal((await virsh(["checkpoint-list", dom.name, "--name"])).stdout.trim(), "", "stale checkpoints removed");
    const after = restoreSetsReplySchema.parse((await request("sets", { domain: dom.name })).json);
    assert.deepEqual(after.sets.map((s) => [s.name, s.active, s.checkpoints]), [[reply.archivedAs, false, 3]]);
    const steps = events.filter((e) => e.requestId === "inplace-ok" && e.type === "progress").map((e) => e.step ?? "");
    for (const step of [/^keep /, /^delete checkpoint metadata virtnbdbackup\.2/, /^archive /, /^delete the kept original /])
      assert.ok(steps.some((s) => step.test(s)), `no ${step} step announced: ${steps.join(" | ")}`);
    assert.deepEqual(await readdir(dirname(dom.diskPath)).then((f) => f.filter((n) => n.startsWith(".vmbs-restore-") || n.startsWith(`${basename(dom.diskPath)}.vmbs-before-restore`))), [], "no staging folder or kept original left");
    await virsh(["start", dom.name]);
  });

  it("restores one disk of a 2-disk domain, as a new domain and in place, touching only that disk; a failed or stopped in-place restore leaves the original", async () => {
    const dom = await h.lab.createDomain({ sizeMiB: 32, running: false });
    const vdb = join(await h.lab.tempDir("vdb-"), "vdb.qcow2");
    await execa("qemu-img", ["create", "-q", "-f", "qcow2", vdb, "32M"], { timeout: 60_000 });
    await virsh(["attach-disk", dom.name, vdb, "vdb", "--driver", "qemu", "--subdriver", "qcow2", "--targetbus", "virtio", "--config"]);
    await virsh(["start", dom.name]);
    const digests: string[] = [];
    for (const [i, pattern] of [0x44, 0x55].entries()) {
      await h.lab.writeGuest(dom.name, { offset: i * 4 * MiB, length: 2 * MiB, pattern });
      h.publishRaw(JSON.stringify({ domain: dom.name, requestId: `d${i}` }));
      assert.equal((await h.waitEvent((e) => e.requestId === `d${i}` && e.type !== "started")).type, "completed");
      digests.push(await h.lab.diskDigest(dom.name));
    }
    const cps = restoreCheckpointsReplySchema.parse((await request("checkpoints", { domain: dom.name })).json);
    assert.deepEqual(cps.checkpoints[0]!.disks, ["vda", "vdb"]);

    const as = `${dom.name}-vda`;
    made.push(as);
    const one = await request("run", { domain: dom.name, disk: "vda", checkpoint: 0, as, targetDir: await imagePool("one-") });
    assert.equal(one.error, undefined, JSON.stringify(one.json));
    const reply = restoreRunReplySchema.parse(one.json);
    assert.equal(reply.images.length, 1);
    assert.equal(await imageDigest(reply.images[0]!), digests[0]);
    const copyXml = (await virsh(["dumpxml", as])).stdout;
    assert.equal([...copyXml.matchAll(/<disk type='file' device='disk'>/g)].length, 1, "the copy has only the restored disk");
    assert.ok(!copyXml.includes(vdb) && !copyXml.includes(dom.diskPath), "the copy shares no image with the original");

    await virsh(["destroy", dom.name]);
    const vdbBefore = await stat(vdb);
    // A copy of the set (inside the backup root, where `from` must be) whose incremental is cut short:
    // virtnbdrestore fails, the original disk must stay as it was.
    const broken = join(h.backupRoot, "broken");
    await mkdir(broken);
    await execa("cp", ["-a", "--", join(h.backupRoot, dom.name), broken], { timeout: 60_000 });
    await truncate(join(broken, dom.name, "vda.inc.virtnbdbackup.1.data"), 1024);
    const failed = await request("run", { domain: dom.name, from: broken, inPlace: true, consent: true, disk: "vda" });
    assert.match(failed.error ?? "", /virtnbdrestore/, "the broken set fails in the engine");
    assert.equal(await imageDigest(dom.diskPath), digests[1], "a failed in-place restore changed the disk");
    assert.equal((await virsh(["checkpoint-list", dom.name, "--name"])).stdout.trim().split("\n").length, 2, "checkpoints kept after a failure");

    // The service stopped while virtnbdrestore runs: the engine is interrupted, the original disk stays.
    const killed = request("run", { domain: dom.name, inPlace: true, consent: true, disk: "vda", checkpoint: 0, requestId: "killed" });
    await waitFor(() => events.some((e) => e.requestId === "killed" && /^virtnbdrestore/.test(e.step ?? "")), { timeoutMs: 60_000, intervalMs: 20, what: "the engine to start" });
    await service.stop();
    assert.match((await killed).error ?? "", /cancelled|stopping/, "the stopped run did not fail");
    assert.equal(await imageDigest(dom.diskPath), digests[1], "a stopped in-place restore changed the disk");
    assert.deepEqual(await readdir(dirname(dom.diskPath)).then((f) => f.filter((n) => n.startsWith(".vmbs-restore-"))), [], "no staging folder left");
    service = await lab.startService();

    const inPlace = await request("run", { domain: dom.name, inPlace: true, consent: true, disk: "vda", checkpoint: 0 });
    assert.equal(inPlace.error, undefined, JSON.stringify(inPlace.json));
    assert.deepEqual(restoreRunReplySchema.parse(inPlace.json).images, [dom.diskPath]);
    assert.equal(await imageDigest(dom.diskPath), digests[0]);
    const vdbAfter = await stat(vdb);
    assert.deepEqual([vdbAfter.ino, vdbAfter.mtimeMs, vdbAfter.size], [vdbBefore.ino, vdbBefore.mtimeMs, vdbBefore.size], "vdb was touched");
    await virsh(["start", dom.name]);
  });
});

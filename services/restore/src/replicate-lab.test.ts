import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { startTestSshd, waitFor, type AgentHarness, type TestSshd } from "@vmbs/lab";
import { ensureStreams } from "@vmbs/bus";
import { replicatePlanReplySchema, replicateReplySchema } from "@vmbs/contracts";
import { createRestoreLabKit } from "./testing/restore-lab-kit.js";

const MiB = 1024 * 1024;
const host = "rplhost";

describe("replicate: a running domain copied over NATS to a second libvirt connection (qemu+ssh through a test sshd)", () => {
  // No agent here: the event stream the agent would create is made directly.
  const lab = createRestoreLabKit(host, { agent: false });
  const { events, made: copies, files, virsh, request } = lab;
  let h: AgentHarness;
  let sshd: TestSshd;
  let sshUri: string;
  const macsOf = async (domain: string) => (await virsh(["domiflist", domain, "--inactive"])).stdout.match(/([0-9a-f]{2}:){5}[0-9a-f]{2}/g) ?? [];
  const exists = (path: string) => stat(path).then(() => true, () => false);
  /** Runs `action` once the run `requestId` announces a step starting with `prefix`; resolves to the error if it never does. */
  const onStep = (requestId: string, prefix: string, action: () => Promise<unknown>) =>
    waitFor(async () => events.some((e) => e.requestId === requestId && e.step?.startsWith(prefix)), { timeoutMs: 120_000, what: `the step ${prefix}` }).then(action, (err: unknown) => err as Error);

  before(async () => {
    h = await lab.start();
    await ensureStreams(h.nc);
    sshd = await startTestSshd();
    // The same libvirtd underneath, reached as another host would be: ssh with the test key, then virt-ssh-helper.
    sshUri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?keyfile=${sshd.keyFile}&no_verify=1`;
    await lab.startService({ env: { VM_WAIT_TIME: "60", SSH_OPTIONS: sshd.sshOptionsLine } });
  });
  after(async () => {
    await lab.stop();
    await sshd?.close();
  });

  it("without consent a running source is refused and unchanged; with consent it is shut down, copied (qcow2 and raw, same content, new UUID and MACs), defined there and started again; the copy starts; a taken name or image path is refused", async () => {
    const dom = await h.lab.createDomain({ sizeMiB: 32, running: false });
    // A user-mode NIC (no host network) gives a MAC to replace; a raw second disk shows raw stays raw.
    const extra = await h.lab.tempDir("replicate-");
    await writeFile(join(extra, "nic.xml"), "<interface type='user'><mac address='52:54:00:5e:00:01'/><model type='virtio'/></interface>");
    await virsh(["attach-device", dom.name, "--file", join(extra, "nic.xml"), "--config"]);
    const raw = join(extra, "data.img");
    await execa("qemu-img", ["create", "-f", "raw", raw, "8M"], { timeout: 30_000 });
    await virsh(["attach-disk", dom.name, raw, "vdb", "--driver", "qemu", "--subdriver", "raw", "--config"]);
    await virsh(["start", dom.name]);
    await h.lab.writeGuest(dom.name, { offset: 4 * MiB, length: 2 * MiB, pattern: 0x5a });
    const sourceUuid = (await virsh(["domuuid", dom.name])).stdout.trim();
    const copy = `${dom.name}-copy`;
    copies.push(copy);
    const copyImage = join(h.lab.imageDir, `${copy}.vda.qcow2`);
    const copyRaw = join(extra, `${copy}.vdb.img`);
    files.push(copyImage, copyRaw);

    // Without consent: refused (400), nothing defined, nothing written, the source still runs.
    const refused = await request("replicate", { domain: dom.name, as: copy, to: sshUri });
    assert.equal(refused.code, "400", JSON.stringify(refused));
    assert.match(refused.error ?? "", /is running; .*consent/);
    assert.equal((await virsh(["domstate", dom.name])).stdout.trim(), "running");
    assert.equal((await virsh(["domuuid", copy]).catch((e: { exitCode: number }) => e)).exitCode, 1, "no copy defined");
    assert.equal(await exists(copyImage), false);

    // The plan over the ssh connection: exact name check (a prefix of an existing name is no conflict).
    const plan = replicatePlanReplySchema.parse((await request("replicate-plan", { domain: dom.name, as: dom.name.slice(0, -1), to: sshUri, consent: true })).json);
    assert.equal(plan.refusal, undefined, plan.refusal);
    assert.deepEqual(plan.disks.map((d) => [d.target, d.format]), [["vda", "qcow2"], ["vdb", "raw"]]);
    assert.match(plan.steps[0]!, /^shut down /);

    // The lab guest has no OS to answer the ACPI shutdown: the test powers it off as a guest would.
    const requestId = "rep-1";
    const poweredOff = onStep(requestId, "shutdown", () => virsh(["destroy", dom.name]));
    const done = await request("replicate", { domain: dom.name, as: copy, to: sshUri, consent: true, requestId });
    assert.equal(done.error, undefined, JSON.stringify(done.json));
    assert.ok(!((await poweredOff) instanceof Error), "the service announced the shutdown before it waited");
    const reply = replicateReplySchema.parse(done.json);
    assert.deepEqual(reply.images, [copyImage, copyRaw]);
    assert.equal(reply.restarted, true);

    // Defined on the target (asked over the ssh connection), own UUID and MACs, images separate and equal.
    assert.equal((await virsh(["domuuid", copy], sshUri)).stdout.trim(), reply.uuid);
    assert.notEqual(reply.uuid, sourceUuid);
    const [sourceMacs, copyMacs] = [await macsOf(dom.name), await macsOf(copy)];
    assert.deepEqual(sourceMacs, ["52:54:00:5e:00:01"]);
    assert.equal(copyMacs.length, 1);
    assert.notDeepEqual(copyMacs, sourceMacs);
    assert.match(copyMacs[0]!, /^52:54:00:/);
    const blk = (await virsh(["domblklist", copy, "--inactive"])).stdout;
    assert.ok(blk.includes(copyImage) && blk.includes(copyRaw), blk);
    for (const [source, image, format] of [[dom.diskPath, copyImage, "qcow2"], [raw, copyRaw, "raw"]] as const) {
      const info = JSON.parse((await execa("qemu-img", ["info", "--output", "json", "-U", image], { timeout: 30_000 })).stdout) as { format: string };
      assert.equal(info.format, format, image);
      assert.notEqual((await stat(image)).ino, (await stat(source)).ino, "a separate file");
      assert.equal((await stat(image)).mode & 0o777, 0o600, `${image} is readable by others`);
      await execa("qemu-img", ["compare", "-U", source, image], { timeout: 60_000 });
    }
    assert.equal((await virsh(["domstate", dom.name])).stdout.trim(), "running", "the source runs again");
    const mine = events.filter((e) => e.requestId === requestId);
    assert.deepEqual([mine[0]?.type, mine.at(-1)?.type], ["started", "completed"]);
    assert.ok(mine.every((e) => e.operation === "replicate" && e.to === sshUri && e.target === copy));
    assert.ok(mine.some((e) => e.step === `start ${dom.name} again`));

    // The copy starts (TCG).
    await virsh(["start", copy], sshUri);
    assert.equal((await virsh(["domstate", copy])).stdout.trim(), "running");
    await virsh(["destroy", copy]);

    // The same name again: refused by the exact name, nothing overwritten.
    const before = (await stat(copyImage)).mtimeMs;
    const taken = await request("replicate", { domain: dom.name, as: copy, to: sshUri, consent: true });
    assert.equal(taken.code, "400");
    assert.match(taken.error ?? "", /a domain named .* exists already/);
    assert.equal((await stat(copyImage)).mtimeMs, before);
    assert.equal((await virsh(["domstate", dom.name])).stdout.trim(), "running");

    // A free name whose image path is taken by a foreign file: refused up front, the file untouched.
    const other = `${dom.name}-other`;
    const foreign = join(extra, `${other}.vdb.img`);
    await writeFile(foreign, "not ours");
    const blocked = await request("replicate", { domain: dom.name, as: other, to: sshUri, consent: true });
    assert.equal(blocked.code, "400");
    assert.match(blocked.error ?? "", /-other\.vdb\.img exists already on the target \(never overwritten\)/);
    assert.equal(await readFile(foreign, "utf8"), "not ours");
    assert.equal(await exists(join(h.lab.imageDir, `${other}.vda.qcow2`)), false);

    // A failure after the copies (a domain of that name appears on the target meanwhile, so the define fails):
    // the copies made are removed, the intruder is left alone, the source runs again.
    const late = `${dom.name}-late`;
    copies.push(late);
    const lateFiles = [join(h.lab.imageDir, `${late}.vda.qcow2`), join(extra, `${late}.vdb.img`)];
    files.push(...lateFiles);
    await writeFile(join(extra, "late.xml"), `<domain type='qemu'><name>${late}</name><memory unit='MiB'>16</memory><os><type arch='x86_64'>hvm</type></os></domain>`);
    const lateId = "rep-2";
    const shutOff = onStep(lateId, "shutdown", () => virsh(["destroy", dom.name]));
    const intruder = onStep(lateId, "copy ", () => virsh(["define", join(extra, "late.xml")]));
    const failed = await request("replicate", { domain: dom.name, as: late, to: sshUri, consent: true, requestId: lateId });
    assert.ok(!((await shutOff) instanceof Error) && !((await intruder) instanceof Error));
    assert.equal(failed.code, "500", JSON.stringify(failed));
    assert.match(failed.error ?? "", /already exists/);
    for (const f of lateFiles) assert.equal(await exists(f), false, `${f} removed`);
    const lateEvents = events.filter((e) => e.requestId === lateId);
    assert.ok(lateEvents.some((e) => e.step?.startsWith("remove the copies made")));
    assert.equal(lateEvents.at(-1)?.type, "failed");
    assert.equal((await virsh(["domstate", dom.name])).stdout.trim(), "running", "the source runs again after a failure");
    assert.match((await virsh(["dumpxml", late])).stdout, /<memory unit='KiB'>16384<\/memory>/, "the intruder is untouched");
  });
});

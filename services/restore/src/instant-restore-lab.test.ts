import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { execa } from "execa";
import { backupRootId, sha256File } from "@vmbs/chain";
import { createChainLeases, LeaseBusyError } from "@vmbs/bus";
import { domainDiskDigest, imageDigest, waitFor, writeLive, type AgentHarness, type GuestWrite } from "@vmbs/lab";
import { runEngineRestore } from "@vmbs/virt";
import {
  instantAbandonReplySchema,
  instantFinishReplySchema,
  instantRestoreReplySchema,
  subjects,
} from "@vmbs/contracts";
import type { RestoreServiceHandle } from "./restore-service.js";
import { createRestoreLabKit } from "./testing/restore-lab-kit.js";

const MiB = 1024 * 1024;
const host = "insthost";

/** The nbdkit processes serving from `dir` (by their command line: the socket lies in the instant VM's folder). */
async function nbdkitsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = (await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (cmd[0]?.endsWith("nbdkit") && cmd.some((a) => a.startsWith(dir))) pids.push(Number(p));
  }
  return pids;
}

/** sha256 of every data file of a chain folder. */
async function chainSums(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir)).filter((n) => n.endsWith(".data")).sort()) out[f] = await sha256File(join(dir, f));
  return out;
}

/** The digest a disk has once `writes` are made on a copy of the raw image `raw` (changed in place). */
async function digestWith(raw: string, writes: GuestWrite[]): Promise<string> {
  const fd = await open(raw, "r+");
  try {
    for (const w of writes) await fd.write(Buffer.alloc(w.length, w.pattern), 0, w.length, w.offset);
  } finally {
    await fd.close();
  }
  return sha256File(raw);
}

describe("instant recovery: a VM running from its backup chain, finished onto local images or abandoned", () => {
  // Exports still serving from a pool's folder (a test that failed midway) end before the pool goes.
  const lab = createRestoreLabKit(host, { releasePool: async (dir) => (await nbdkitsUnder(dir)).forEach((pid) => process.kill(pid, "SIGTERM")) });
  const { made, events, drills, virsh, request, imagePool } = lab;
  let h: AgentHarness;
  let service: RestoreServiceHandle;
  const exists = (path: string) => stat(path).then(() => true, () => false);
  let rootId: string;

  before(async () => {
    h = await lab.start();
    service = await lab.startService({ env: { VMBS_STATE_DIR: await h.lab.tempDir("instant-state-") }, chainWaitMs: 20_000 });
    rootId = await backupRootId(h.backupRoot, host);
  });
  after(() => lab.stop());

  /** A running lab domain with 3 backups of distinct writes; the chain folder and a raw copy of each checkpoint. */
  const backedUp = async (sizeMiB: number, withVdb = false) => {
    const dom = await h.lab.createDomain({ sizeMiB, running: !withVdb });
    // A second disk, written before the start, so that two disks are served, copied and pivoted.
    const vdb = withVdb ? join(await h.lab.tempDir("instant-vdb-"), "vdb.qcow2") : undefined;
    if (vdb) {
      await execa("qemu-img", ["create", "-q", "-f", "qcow2", vdb, "16M"], { timeout: 60_000 });
      await execa("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5b 1M 2M", vdb], { stdin: "ignore", timeout: 60_000 });
      await virsh(["attach-disk", dom.name, vdb, "vdb", "--driver", "qemu", "--subdriver", "qcow2", "--targetbus", "virtio", "--config"]);
      await virsh(["start", dom.name]);
    }
    for (const [i, pattern] of [0x11, 0x22, 0x33].entries()) {
      await h.lab.writeGuest(dom.name, { offset: i * 3 * MiB, length: 4 * MiB, pattern });
      h.publishRaw(JSON.stringify({ domain: dom.name, requestId: `${dom.name}-b${i}` }));
      const done = await h.waitEvent((e) => e.requestId === `${dom.name}-b${i}` && e.type !== "started");
      assert.equal(done.type, "completed", JSON.stringify(done));
    }
    return { dom, chain: join(h.backupRoot, dom.name), vdb };
  };
  /** vda at checkpoint `until` of a chain restored by stock virtnbdrestore, as a raw file. */
  const rawAt = async (chain: string, until: string) => {
    const out = await h.lab.tempDir("instant-expect-");
    const { images } = await runEngineRestore({ inputDir: chain, outputDir: join(out, "img"), untilCheckpoint: until, disk: "vda", timeoutMs: 300_000 });
    assert.equal(images.length, 1, images.join(", "));
    const image = images[0]!;
    const raw = join(out, "disk.raw");
    await execa("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", image, raw], { timeout: 120_000 });
    return raw;
  };

  it("runs checkpoint 2 of a 2-disk domain at once from the chain; guest writes go to the overlay, never to the chain; the finish copies both disks onto local images while it runs, which then hold checkpoint 2 plus the writes, with no export or overlay left, and survives a restart", async () => {
    const { dom, chain, vdb } = await backedUp(64, true);
    const vdbDigest = await imageDigest(vdb!);
    const sumsBefore = await chainSums(chain);
    const targetDir = await imagePool("instant-");
    const as = `${dom.name}-now`;
    made.push(as);

    const r = await request("instant", { domain: dom.name, as, targetDir, requestId: "i1" });
    assert.equal(r.error, undefined, JSON.stringify(r.json));
    const reply = instantRestoreReplySchema.parse(r.json);
    assert.equal(reply.checkpoint, "virtnbdbackup.2");
    assert.deepEqual(reply.disks.map((d) => d.target), ["vda", "vdb"]);
    const [disk, second] = reply.disks;
    assert.match((await virsh(["domstate", as])).stdout, /running/);
    assert.equal(disk!.image, join(targetDir, `${as}.vda.qcow2`));
    assert.equal(await exists(disk!.image), false, "no final image before the finish");
    const live = (await virsh(["dumpxml", as])).stdout;
    assert.match(live, new RegExp(`<source file='${disk!.overlay}'`));
    assert.match(live, /<source protocol='nbd'[^>]*>\s*<host transport='unix' socket='[^']+'/);
    assert.equal((await nbdkitsUnder(targetDir)).length, 2, "one nbdkit serves each disk");
    const startEvents = events.filter((e) => e.requestId === "i1");
    assert.deepEqual([...new Set(startEvents.map((e) => e.operation))], ["instant"]);
    assert.deepEqual(startEvents.filter((e) => e.type !== "progress").map((e) => e.type), ["started", "completed"]);

    // While it is served, the chain is held: a retention or rotation would wait.
    const leases = await createChainLeases(h.nc, { holder: "instant-test" });
    await assert.rejects(leases.acquire(rootId, dom.name), LeaseBusyError);

    // The guest writes over data of every checkpoint and into untouched space.
    const writes: GuestWrite[] = [
      { offset: 2 * MiB, length: 3 * MiB, pattern: 0x66 },
      { offset: 40 * MiB, length: 2 * MiB, pattern: 0x77 },
    ];
    for (const w of writes) await writeLive(h.lab.uri, as, w);
    const expected = await digestWith(await rawAt(chain, "virtnbdbackup.2"), writes);
    assert.equal(await domainDiskDigest(h.lab.uri, as, disk!.overlay), expected, "the overlay over the export is checkpoint 2 plus the writes");
    assert.deepEqual(await chainSums(chain), sumsBefore, "the chain's data files changed");
    const sums = await execa("sha256sum", ["-c", ...["0", "1", "2"].map((n) => `checksums/virtnbdbackup.${n}.sha256`)], { cwd: chain, reject: false, timeout: 60_000 });
    assert.equal(sums.exitCode, 0, sums.stderr);

    const refused = await request("instant-finish", { domain: as });
    assert.equal(refused.code, "400", "a finish without consent is refused");
    const f = await request("instant-finish", { domain: as, consent: true, requestId: "f1" });
    assert.equal(f.error, undefined, JSON.stringify(f.json));
    const finished = instantFinishReplySchema.parse(f.json);
    assert.deepEqual(finished.images, [disk!.image, second!.image]);
    assert.ok((finished.chainReadBytes ?? 0) > 0, "the export read the chain");
    assert.equal(await domainDiskDigest(h.lab.uri, as, disk!.image), expected, "the final image is checkpoint 2 plus the writes");
    for (const xml of [(await virsh(["dumpxml", as])).stdout, (await virsh(["dumpxml", "--inactive", as])).stdout]) {
      assert.ok(!xml.includes("nbd") && !xml.includes(disk!.overlay) && !xml.includes(second!.overlay), `an NBD export or overlay is still named:\n${xml}`);
      for (const d of [disk!, second!]) assert.match(xml, new RegExp(`<source file='${d.image}'`));
    }
    assert.deepEqual(await nbdkitsUnder(targetDir), [], "no nbdkit left");
    assert.deepEqual((await readdir(targetDir)).sort(), [basename(disk!.image), basename(second!.image)].sort(), "only the final images are left in the folder");
    const progress = events.filter((e) => e.requestId === "f1" && e.type === "progress");
    for (const t of ["vda", "vdb"]) assert.ok(progress.some((e) => new RegExp(`^pivot ${t}`).test(e.step ?? "")), progress.map((e) => e.step).join(" | "));
    assert.equal(events.filter((e) => e.requestId === "f1").at(-1)?.type, "completed");
    (await leases.acquire(rootId, dom.name)).release();

    // It survives a restart on its own image, and the chain still passes a drill.
    await virsh(["destroy", as]);
    assert.equal(await imageDigest(second!.image), vdbDigest, "the second disk's image is its backup");
    await virsh(["start", as]);
    assert.match((await virsh(["domstate", as])).stdout, /running/);
    assert.equal(await domainDiskDigest(h.lab.uri, as, disk!.image), expected);
    h.nc.publish(subjects.cmd.drill(host), JSON.stringify({ domain: dom.name, requestId: "d1" }));
    const drilled = await waitFor(() => drills.find((e) => e.requestId === "d1" && e.type !== "started"), { timeoutMs: 180_000, what: "the drill" });
    assert.equal(drilled.type, "completed", JSON.stringify(drilled));
    assert.deepEqual(await chainSums(chain), sumsBefore);
  });

  it("after the service and the VM went down (a host restart), the next start serves it again and says so; --abandon then leaves nothing: no domain, no files, no nbdkit, the lease free", async () => {
    const { dom, chain } = await backedUp(32);
    const sumsBefore = await chainSums(chain);
    const targetDir = await imagePool("instant-ab-");
    const as = `${dom.name}-ab`;
    made.push(as);
    const r = await request("instant", { domain: dom.name, as, targetDir, checkpoint: 1 });
    assert.equal(r.error, undefined, JSON.stringify(r.json));
    assert.equal(instantRestoreReplySchema.parse(r.json).checkpoint, "virtnbdbackup.1");
    const taken = await request("instant", { domain: dom.name, as, targetDir });
    assert.equal(taken.code, "400");
    assert.match(taken.error ?? "", /exists already/);

    // A host restart: the service, the VM and the exports all end.
    await service.stop();
    await virsh(["destroy", as]);
    for (const pid of await nbdkitsUnder(targetDir)) process.kill(pid, "SIGKILL");
    await waitFor(async () => (await nbdkitsUnder(targetDir)).length === 0, { timeoutMs: 10_000, what: "nbdkit to end" });
    const seen = events.length;
    service = await lab.startService();
    const attention = events.slice(seen).find((e) => e.type === "attention" && e.target === as);
    assert.ok(attention, "an attention event names the instant VM");
    assert.equal(attention.operation, "instant");
    assert.match(attention.reason ?? "", /exports of vda were started again.*shut off/);
    assert.equal((await nbdkitsUnder(targetDir)).length, 1, "served again");
    await virsh(["start", as]);
    assert.match((await virsh(["domstate", as])).stdout, /running/);
    await writeLive(h.lab.uri, as, { offset: 0, length: MiB, pattern: 0x99 });

    const a = await request("instant-abandon", { domain: as, consent: true, requestId: "a1" });
    assert.equal(a.error, undefined, JSON.stringify(a.json));
    assert.ok(instantAbandonReplySchema.parse(a.json).removed.length > 0);
    assert.notEqual((await virsh(["domstate", as]).catch((e: { stderr: string }) => ({ stdout: e.stderr }))).stdout.match(/failed to get domain|Domain not found/), null, "the domain is gone");
    assert.deepEqual(await readdir(targetDir), [], "no file left");
    assert.deepEqual(await nbdkitsUnder(targetDir), [], "no nbdkit left");
    const leases = await createChainLeases(h.nc, { holder: "instant-test" });
    await (await leases.acquire(rootId, dom.name)).release();
    assert.deepEqual(await chainSums(chain), sumsBefore, "the chain's data files changed");
    const again = await request("instant-abandon", { domain: as, consent: true });
    assert.match(again.error ?? "", /no instant VM named/);
  });

  it("refuses a compressed chain, which cannot be served, leaving nothing behind and the lease free", async () => {
    const dom = await h.lab.createDomain({ sizeMiB: 16 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 2 * MiB, pattern: 0x42 });
    // A chain made by the engine itself with --compress (the agent's VIRTNBDBACKUP_ARGS could ask the same).
    await execa("virtnbdbackup", ["--domain", dom.name, "--level", "full", "--output", join(h.backupRoot, dom.name), "--uri", h.lab.uri, "--compress", "--noprogress"], { stdin: "ignore", timeout: 300_000 });
    const targetDir = await imagePool("instant-z-");
    const as = `${dom.name}-z`;
    made.push(as);
    const r = await request("instant", { domain: dom.name, as, targetDir, requestId: "z1" });
    assert.equal(r.code, "400", JSON.stringify(r.json));
    assert.match(r.error ?? "", /vda.full.data is compressed.*cannot be served for an instant recovery; restore it instead/);
    assert.equal(events.filter((e) => e.requestId === "z1").at(-1)?.type, "failed");
    assert.notEqual((await virsh(["domstate", as]).catch((e: { stderr: string }) => ({ stdout: e.stderr }))).stdout.match(/failed to get domain|Domain not found/), null, "no domain was left");
    assert.deepEqual(await readdir(targetDir), [], "no file left");
    assert.deepEqual(await nbdkitsUnder(targetDir), []);
    await (await (await createChainLeases(h.nc, { holder: "instant-test" })).acquire(rootId, dom.name)).release();
  });
});

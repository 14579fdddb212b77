import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, cp, lstat, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { execa } from "execa";
import { AckPolicy, DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { waitFor, type AgentHarness, type LabDomain } from "@vmbs/lab";
import { createChainLeases } from "@vmbs/bus";
import { backupRootId } from "@vmbs/chain";
import { replicatePlanReplySchema, restorePlanReplySchema, restoreRunReplySchema, subjects, type RestoreEndpoint } from "@vmbs/contracts";
import { createRestoreLabKit } from "./testing/restore-lab-kit.js";

const host = "rstedge";

/** Requests that reach the restore service (root) by a side door or with hostile values: nothing may run. */
describe("restore service edge: only its own subjects, only safe URIs, paths, files and XML, and a bound", () => {
  const lab = createRestoreLabKit(host);
  const { events, files, virsh, request } = lab;
  let h: AgentHarness;
  let dom: LabDomain;
  let scratch: string;
  const defined = (name: string) => virsh(["domuuid", name]).then(() => true, () => false);
  const exists = (path: string) => lstat(path).then(() => true, () => false);
  /** A fresh name for a copy, remembered (with its images in the lab's folder) for the cleanup. */
  const copyName = (tag: string) => {
    const name = `${dom.name}-${tag}`;
    lab.made.push(name);
    files.push(join(h.lab.imageDir, `${name}.vda.qcow2`), join(h.lab.imageDir, `${name}.xml`));
    return name;
  };

  before(async () => {
    h = await lab.start();
    await lab.startService({ chainWaitMs: 2_000, maxConcurrent: 2 });
    scratch = await h.lab.tempDir("edge-");
    dom = await h.lab.createDomain({ sizeMiB: 16 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "full" }));
    assert.equal((await h.waitEvent((e) => e.requestId === "full" && e.type !== "started")).type, "completed");
    await virsh(["destroy", dom.name]);
  });
  after(() => lab.stop());

  it("a KV message a push consumer delivers to the replicate endpoint (its subject still $KV.…) is ignored: nothing replicated, nothing answered", async () => {
    const as = copyName("kv");
    const bucket = `edge_${randomBytes(4).toString("hex")}`;
    const kv = await new Kvm(h.nc).create(bucket);
    await kv.put("mine", JSON.stringify({ domain: dom.name, as, requestId: "kv" }));
    const jsm = await jetstreamManager(h.nc);
    const consumer = await jsm.consumers.add(`KV_${bucket}`, {
      deliver_subject: subjects.svc.restoreEndpoint(host, "replicate"),
      deliver_group: "q",
      filter_subject: `$KV.${bucket}.mine`,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    await waitFor(async () => (await jsm.consumers.info(`KV_${bucket}`, consumer.name)).delivered.stream_seq >= 1, { timeoutMs: 10_000, what: "the delivery" });
    // A replication of this 16 MiB shut-off domain announces itself within a second; three are given.
    await new Promise((r) => setTimeout(r, 3_000));
    assert.deepEqual(events.filter((e) => e.requestId === "kv"), [], "the service acted on the delivery");
    assert.equal(await defined(as), false);
    assert.equal(await exists(join(h.lab.imageDir, `${as}.vda.qcow2`)), false);
    await jsm.consumers.delete(`KV_${bucket}`, consumer.name);
    await kv.destroy();
    // The same body published to the endpoint itself is served.
    const plan = await request("replicate-plan", { domain: dom.name, as });
    assert.equal(plan.error, undefined, JSON.stringify(plan.json));
  });

  it("a stored value a direct get answers on the replicate endpoint (the reply subject of a KV read) is ignored: nothing replicated", async () => {
    // Any client may name any reply subject for its own KV read: the server then publishes the raw value there,
    // with the endpoint's exact subject, the headers of a stored message and no reply.
    const as = copyName("direct");
    const bucket = `edge_${randomBytes(4).toString("hex")}`;
    const kv = await new Kvm(h.nc).create(bucket);
    await kv.put("mine", JSON.stringify({ domain: dom.name, as, requestId: "direct" }));
    const seen: string[] = [];
    const probe = h.nc.subscribe(subjects.svc.restoreEndpoint(host, "replicate"), { callback: (_e, m) => void seen.push(m.string()) });
    h.nc.publish(`$JS.API.DIRECT.GET.KV_${bucket}.$KV.${bucket}.mine`, "", { reply: subjects.svc.restoreEndpoint(host, "replicate") });
    await waitFor(() => seen.length > 0, { timeoutMs: 10_000, what: "the redirected answer" });
    probe.unsubscribe();
    await new Promise((r) => setTimeout(r, 3_000));
    assert.deepEqual(events.filter((e) => e.requestId === "direct"), [], "the service acted on the redirected value");
    assert.equal(await defined(as), false);
    assert.equal(await exists(join(h.lab.imageDir, `${as}.vda.qcow2`)), false);
    await kv.destroy();
  });

  it("target URIs that would run a program (qemu+ext command=, ssh command=, an option as host) are refused before libvirt opens them", async () => {
    const marker = join(scratch, "evil-ran");
    const evil = join(scratch, "evil");
    await writeFile(evil, `#!/bin/sh\necho ran > ${marker}\nexit 1\n`);
    await chmod(evil, 0o755);
    const as = copyName("evil");
    for (const to of [`qemu+ext:///system?command=${evil}`, `qemu+ssh://127.0.0.1/system?command=${evil}`, `qemu+ssh://127.0.0.1/system?netcat=${evil}`, "qemu+ssh://-oProxyCommand=x/system"])
      for (const endpoint of ["replicate-plan", "replicate"] as const) {
        const r = await request(endpoint, { domain: dom.name, as, to, requestId: "evil" });
        assert.equal(r.code, "400", `${endpoint} ${to}: ${JSON.stringify(r)}`);
        assert.match(r.error ?? "", /to: must be qemu|to: URI parameter/);
        assert.equal(await exists(marker), false, `${endpoint} ${to} ran the program`);
      }
    assert.deepEqual(events.filter((e) => e.requestId === "evil"), []);
    assert.equal(await defined(as), false);
  });

  it("paths are resolved and confined: targetDir, diskDir and from outside their roots are refused; from naming the backup root otherwise still takes the chain lease", async () => {
    const outside = await h.lab.tempDir("outside-");
    const as = copyName("path");
    const sneaky = `${h.lab.imageDir}/../../../../..${outside}`;
    const refusals: [RestoreEndpoint, object, RegExp][] = [
      ["run", { domain: dom.name, as, targetDir: sneaky }, /targetDir .* is not a storage pool path or image folder/],
      ["plan", { domain: dom.name, as, targetDir: sneaky }, /targetDir .* is not a storage pool path or image folder/],
      ["run", { domain: dom.name, as, targetDir: `${h.lab.imageDir}\u0000/../../..${outside}` }, /targetDir: must not contain a NUL byte/],
      ["replicate", { domain: dom.name, as, diskDir: sneaky }, /is not a storage pool path or image folder of a domain/],
      ["run", { domain: dom.name, as, from: `${h.backupRoot}/../../../etc` }, /from .* is not inside the backup root/],
      ["sets", { domain: dom.name, from: "/etc" }, /from .* is not inside the backup root/],
      ["checkpoints", { domain: dom.name, from: outside }, /from .* is not inside the backup root/],
    ];
    for (const [endpoint, body, why] of refusals) {
      const r = await request(endpoint, body);
      assert.equal(r.code, "400", `${endpoint} ${JSON.stringify(body)}: ${JSON.stringify(r)}`);
      assert.match(r.error ?? "", why);
    }
    assert.deepEqual(await readdir(outside), [], "something was written outside the image folders");
    assert.equal(await defined(as), false);

    // The backup root spelled with a slash, or through a symlink, is the root: a run waits for the chain lease.
    const alias = join(scratch, "root-alias");
    await symlink(h.backupRoot, alias);
    const leases = await createChainLeases(h.nc, { holder: "edge-test" });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holding = leases.withLease(await backupRootId(h.backupRoot, host), dom.name, { op: "test" }, () => held);
    try {
      for (const from of [`${h.backupRoot}/`, alias, `${h.backupRoot}/./`]) {
        const r = await request("run", { domain: dom.name, as, from });
        assert.equal(r.code, "400", `from ${from}: ${JSON.stringify(r)}`);
        assert.match(r.error ?? "", /chain lease .* is busy: held by edge-test/);
      }
    } finally {
      release();
      await holding;
    }
    assert.equal(await defined(as), false);
    assert.equal(await exists(join(h.lab.imageDir, `${as}.vda.qcow2`)), false);
  });

  it("the new domain's XML is created, never written through a symlink nor over a file: the victim stays, nothing is defined or left", async () => {
    const as = copyName("link");
    const victim = join(scratch, "victim");
    await writeFile(victim, "victim");
    const xmlPath = join(h.lab.imageDir, `${as}.xml`);
    await symlink(victim, xmlPath);
    const plan = restorePlanReplySchema.parse((await request("plan", { domain: dom.name, as })).json);
    assert.match(plan.refusal ?? "", new RegExp(`${as}\\.xml exists already`));
    const r = await request("run", { domain: dom.name, as });
    assert.equal(r.code, "400", JSON.stringify(r));
    assert.match(r.error ?? "", /exists already, never replaced/);
    assert.equal(await readFile(victim, "utf8"), "victim");
    assert.ok((await lstat(xmlPath)).isSymbolicLink());
    assert.equal(await defined(as), false);
    assert.equal(await exists(join(h.lab.imageDir, `${as}.vda.qcow2`)), false, "the image of a refused run was left");
  });

  it("a set whose saved XML holds block, iSCSI and network disks and <qemu:commandline> is restored without them, said in the plan; the image is 0600 and the domain starts", async () => {
    // A copy of the set in the backup root with an edited XML, as a tampered mirror would hold it.
    const tampered = join(h.backupRoot, "tampered");
    await cp(join(h.backupRoot, dom.name), join(tampered, dom.name), { recursive: true, preserveTimestamps: true });
    const xmlFile = join(tampered, dom.name, "vmconfig.virtnbdbackup.0.xml");
    const { mtime } = await stat(xmlFile);
    const xml = (await readFile(xmlFile, "utf8"))
      .replace(/<domain([^>]*)>/, "<domain$1 xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
      .replace(
        "<devices>",
        `<devices><disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/null'/><target dev='vdx' bus='virtio'/></disk>
        <disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='iscsi' name='iqn.2026-01.lan.san:t/1'><host name='127.0.0.1' port='3260'/></source><target dev='vdy' bus='virtio'/></disk>`,
      )
      .replace("</domain>", `<qemu:commandline><qemu:arg value='-device'/><qemu:arg value='nonexistent-device-vmbs'/></qemu:commandline></domain>`);
    await writeFile(xmlFile, xml);
    // The set's mtime order is checked before a restore: the edit keeps the file's time.
    await execa("touch", ["-d", mtime.toISOString(), "--", xmlFile]);
    const as = copyName("strip");
    const plan = restorePlanReplySchema.parse((await request("plan", { domain: dom.name, as, from: tampered })).json);
    const stripped = ["disk vdx (block /dev/null)", "disk vdy (network iscsi)", "<qemu:commandline> (QEMU pass-through)"];
    assert.deepEqual(plan.stripped, stripped);
    assert.ok(plan.steps.some((s) => s.startsWith("leave out what a restore cannot bring back safely: disk vdx")), plan.steps.join("\n"));
    const r = await request("run", { domain: dom.name, as, from: tampered });
    assert.equal(r.error, undefined, JSON.stringify(r.json));
    const reply = restoreRunReplySchema.parse(r.json);
    assert.deepEqual(reply.stripped, stripped);
    const live = (await virsh(["dumpxml", as])).stdout;
    for (const gone of ["/dev/null", "iscsi", "qemu:commandline", "nonexistent-device-vmbs", "vdx", "vdy"]) assert.ok(!live.includes(gone), `${gone} kept: ${live}`);
    assert.equal((await stat(reply.images[0]!)).mode & 0o777, 0o600, "the restored image is readable by others");
    assert.equal((await stat(reply.xmlPath!)).mode & 0o777, 0o600);
    // libvirt's dynamic ownership hands the 0600 image to QEMU's user: the domain starts.
    await virsh(["start", as]);
    assert.equal((await virsh(["domstate", as])).stdout.trim(), "running");
  });

  it("at most maxConcurrent requests are served at once: one more is answered busy at once, and served again once they end", async () => {
    // An ssh target that accepts and never speaks: each plan towards it holds its slot.
    const sockets: Socket[] = [];
    let hangUp = false;
    const silent = createServer((s) => (hangUp ? s.destroy() : void sockets.push(s)));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    const stuck = [1, 2].map(() => request("replicate-plan", { domain: dom.name, as: `${dom.name}-busy`, to: `qemu+ssh://root@127.0.0.1:${port}/system?no_verify=1` }, 120_000));
    try {
      await waitFor(() => sockets.length >= 2, { timeoutMs: 30_000, what: "two stuck connections" });
      const started = Date.now();
      const busy = await request("replicate-plan", { domain: dom.name, as: `${dom.name}-busy` }, 10_000);
      assert.equal(busy.code, "503", JSON.stringify(busy));
      assert.match(busy.error ?? "", /^busy: 2 restore requests/);
      assert.ok(Date.now() - started < 5_000, "busy is answered at once");
    } finally {
      // From now on every connection, also one accepted meanwhile, is hung up on: the stuck plans fail.
      hangUp = true;
      for (const s of sockets) s.destroy();
      silent.close();
    }
    for (const r of await Promise.all(stuck)) assert.equal(r.code, "500", JSON.stringify(r));
    const served = await request("replicate-plan", { domain: dom.name, as: `${dom.name}-busy` });
    assert.equal(served.error, undefined, JSON.stringify(served.json));
    assert.equal(replicatePlanReplySchema.parse(served.json).refusal, undefined);
  });
});

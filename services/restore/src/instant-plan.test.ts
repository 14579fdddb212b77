import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChainFolder } from "@vmbs/chain";
import type { RestorePoint } from "@vmbs/contracts";
import { domainXmlDisks, withDiskSources } from "./domain-xml.js";
import { chainFilesOfDisk, nameToken, planInstantLayout, planInstantRecovery, type InstantFacts } from "./instant-plan.js";

const file = (path: string, mtimeMs: number) => ({ path, size: 100, mtimeMs });
const folder: ChainFolder = {
  dir: "/backups/db",
  exists: true,
  cpt: ["virtnbdbackup.0", "virtnbdbackup.1", "virtnbdbackup.2"],
  files: [
    file("vda.full.data", 1),
    file("vdb.full.data", 1),
    file("vda.inc.virtnbdbackup.1.data", 2),
    file("vdb.inc.virtnbdbackup.1.data", 2),
    file("vda.inc.virtnbdbackup.2.data", 3),
    file("vda.inc.virtnbdbackup.10.data", 4),
    file("checkpoints/virtnbdbackup.2.xml", 3),
  ],
};
const points: RestorePoint[] = folder.cpt!.map((name, index) => ({ index, name, time: null, bytes: 0, disks: [] }));

describe("instant recovery plan", () => {
  it("serves each disk from the full backup and the incrementals up to the checkpoint, in chain order, and no other file", () => {
    assert.deepEqual(chainFilesOfDisk(folder, points, points[2]!, "vda"), ["/backups/db/vda.full.data", "/backups/db/vda.inc.virtnbdbackup.1.data", "/backups/db/vda.inc.virtnbdbackup.2.data"]);
    assert.deepEqual(chainFilesOfDisk(folder, points, points[1]!, "vdb"), ["/backups/db/vdb.full.data", "/backups/db/vdb.inc.virtnbdbackup.1.data"]);
    assert.deepEqual(chainFilesOfDisk(folder, points, points[0]!, "vda"), ["/backups/db/vda.full.data"]);
  });

  it("refuses a chain that lacks a disk's file on the way to the checkpoint", () => {
    assert.throws(() => chainFilesOfDisk(folder, points, points[2]!, "vdb"), /no data file of disk vdb for virtnbdbackup\.2/);
  });

  it("keeps sockets, pid files and overlays in one hidden folder per instant VM, final images beside it named as a restore names them", () => {
    const layout = planInstantLayout("/var/lib/libvirt/images", "db now", new Map([["vda", ["/b/vda.full.data"]]]));
    const work = `/var/lib/libvirt/images/.vmbs-instant-${nameToken("db now")}`;
    assert.equal(layout.workDir, work);
    assert.deepEqual(layout.disks, [{ target: "vda", files: ["/b/vda.full.data"], socket: `${work}/vda.sock`, pidFile: `${work}/vda.pid`, overlay: `${work}/vda.qcow2`, image: "/var/lib/libvirt/images/db now.vda.qcow2" }]);
    assert.notEqual(nameToken("db now"), nameToken("db now2"));
    assert.match(nameToken("a/../b"), /^[0-9a-f]{16}$/);
  });

  it("points a disk at an overlay over an NBD export, and back at a standalone image, with its whole backing chain spelled out", () => {
    const xml = `<domain><name>x</name><devices>
      <disk type='file' device='disk'><source file='/old.qcow2'/><backingStore type='file'><source file='/base.qcow2'/></backingStore><target dev='vda'/></disk>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/data.raw'/><target dev='vdb'/></disk>
    </devices></domain>`;
    const served = withDiskSources(xml, new Map([["vda", { file: "/w/vda.qcow2", nbdSocket: "/w/vda.sock" }]]));
    assert.deepEqual(domainXmlDisks(served), [{ target: "vda", file: "/w/vda.qcow2" }, { target: "vdb", file: "/data.raw" }]);
    assert.match(served, /<driver name="qemu" type="qcow2"\/><source file="\/w\/vda.qcow2"\/><backingStore type="network"><format type="raw"\/><source protocol="nbd"><host transport="unix" socket="\/w\/vda.sock"\/><\/source><backingStore\/><\/backingStore>/);
    assert.ok(!served.includes("/base.qcow2"), "the old backing chain is gone");
    assert.match(served, /type="raw"\/><source file="\/data.raw"\/><target dev="vdb"\/><\/disk>/, "other disks are kept as they were");
    const local = withDiskSources(served, new Map([["vda", { file: "/img/x.vda.qcow2" }]]));
    assert.match(local, /<source file="\/img\/x.vda.qcow2"\/><backingStore\/>/);
    assert.ok(!local.includes("nbd"));
  });

  it("after a restart: removes a start that was cut short or a VM undefined meanwhile, completes a finish whose disks were all pivoted, drops the partial copies of one that was not, and serves again what stopped being served", () => {
    const base: InstantFacts = { phase: "serving", defined: true, running: true, state: "running", onOverlays: ["vda", "vdb"], served: ["vda", "vdb"], disks: ["vda", "vdb"] };
    const plan = (f: Partial<InstantFacts>) => planInstantRecovery("instant VM x", { ...base, ...f });
    assert.equal(plan({ phase: "starting" }).kind, "remove");
    assert.equal(plan({ defined: false, running: false }).kind, "remove");
    assert.deepEqual(plan({}), { kind: "resume", dropCopies: [], backToServing: false, serve: [] }, "a service restart alone: nothing to do, nothing to say");
    const host = plan({ running: false, state: "shut off", served: [] });
    assert.deepEqual([host.kind === "resume" && host.serve, host.kind === "resume" && host.dropCopies], [["vda", "vdb"], []]);
    assert.match(host.kind === "resume" ? (host.say ?? "") : "", /exports of vda, vdb were started again; it is shut off: start it/);
    const underIt = plan({ served: ["vdb"] });
    assert.match(underIt.kind === "resume" ? (underIt.say ?? "") : "", /exports of vda were started again; it ran while they were down and may see I\/O errors/);
    assert.equal(plan({ phase: "finishing", onOverlays: [] }).kind, "complete-finish");
    const half = plan({ phase: "finishing", onOverlays: ["vdb"] });
    assert.deepEqual(half.kind === "resume" && [half.dropCopies, half.backToServing, half.serve], [["vdb"], false, []], "vda stays on its image, only vdb's copy goes");
    const none = plan({ phase: "finishing", running: false, state: "shut off", served: [] });
    assert.deepEqual(none.kind === "resume" && [none.dropCopies, none.backToServing, none.serve], [["vda", "vdb"], true, ["vda", "vdb"]]);
    assert.match(none.kind === "resume" ? (none.say ?? "") : "", /finish was interrupted.*run vmbs instant-restore --finish again/);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DomainXmlError, domainXmlDisks, domainXmlHasTpmEmulator, domainXmlMacs, domainXmlNvram, domainXmlOtherDisks, rewriteAsNewDomain, stripUnrestorable } from "./domain-xml.js";

const source = `<domain type='kvm' id='7'>
  <name>web &amp; "db"</name>
  <uuid>0b2c7a1e-0000-4000-8000-000000000001</uuid>
  <os><type>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/web-os.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><source file='/img/web-data.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/iso/install.iso'/><target dev='sda' bus='sata'/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/><target dev='vnet3'/></interface>
    <interface type='bridge'><mac address='52:54:00:aa:bb:cd'/><source bridge='br0'/></interface>
  </devices>
</domain>`;

describe("domain XML for a restored copy", () => {
  it("lists file disks (not cdroms) and the nvram", () => {
    assert.deepEqual(domainXmlDisks(source), [
      { target: "vda", file: "/img/web-os.qcow2" },
      { target: "vdb", file: "/img/web-data.qcow2" },
    ]);
    assert.equal(domainXmlNvram(source), "/var/lib/libvirt/qemu/nvram/web_VARS.fd");
  });

  it("tells an emulated TPM (swtpm, state kept by UUID) from a passthrough one or none", () => {
    const withTpm = (tpm: string) => source.replace("</devices>", `${tpm}</devices>`);
    assert.equal(domainXmlHasTpmEmulator(withTpm("<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>")), true);
    assert.equal(domainXmlHasTpmEmulator(withTpm("<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>")), false);
    assert.equal(domainXmlHasTpmEmulator(source), false);
  });

  const cases: { what: string; images: [string, string][]; disks: string[] }[] = [
    { what: "whole domain", images: [["vda", "/r/n.vda.qcow2"], ["vdb", "/r/n.vdb.qcow2"]], disks: ["/r/n.vda.qcow2", "/r/n.vdb.qcow2"] },
    { what: "one disk: the other is dropped, never shared", images: [["vdb", "/r/n.vdb.qcow2"]], disks: ["/r/n.vdb.qcow2"] },
  ];
  for (const c of cases)
    it(`rewrites name, UUID, MACs, disks and nvram (${c.what})`, () => {
      const out = rewriteAsNewDomain(source, { name: "copy <1>", images: new Map(c.images), nvram: "/r/copy_VARS.fd" });
      assert.deepEqual(domainXmlDisks(out.xml).map((d) => d.file), c.disks);
      assert.match(out.xml, /<name>copy &lt;1&gt;<\/name>/);
      assert.match(out.xml, new RegExp(`<uuid>${out.uuid}</uuid>`));
      assert.notEqual(out.uuid, "0b2c7a1e-0000-4000-8000-000000000001");
      assert.equal(out.macs.length, 2);
      for (const mac of out.macs) assert.match(mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
      assert.ok(!out.xml.includes("aa:bb:c"), "old MACs gone");
      assert.ok(!out.xml.includes("vnet3") && !out.xml.includes(" id="), "no live tap name or domain id");
      assert.equal(domainXmlNvram(out.xml), "/r/copy_VARS.fd");
      assert.ok(out.xml.includes("/iso/install.iso") && out.xml.includes("OVMF_CODE.fd") && out.xml.includes("br0"), "everything else kept");
    });

  it("lists NIC MACs and non-file disks; given MACs are kept in NIC order", () => {
    assert.deepEqual(domainXmlMacs(source), ["52:54:00:aa:bb:cc", "52:54:00:aa:bb:cd"]);
    assert.deepEqual(domainXmlOtherDisks(source), []);
    assert.deepEqual(domainXmlOtherDisks(source.replace("<devices>", "<devices><disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='vdz'/></disk>")), ["vdz"]);
    const out = rewriteAsNewDomain(source, { name: "n", images: new Map([["vda", "/a"], ["vdb", "/b"]]), macs: ["52:54:00:aa:bb:cc", "52:54:00:01:02:03"] });
    assert.deepEqual(domainXmlMacs(out.xml), ["52:54:00:aa:bb:cc", "52:54:00:01:02:03"]);
    assert.deepEqual(out.macs, ["52:54:00:aa:bb:cc", "52:54:00:01:02:03"]);
  });

  it("a restored copy leaves out block, iSCSI and network disks, cdroms, host devices and folders, and QEMU pass-through", () => {
    const hostile = source
      .replace("<domain type='kvm' id='7'>", "<domain type='kvm' id='7' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
      .replace(
        "<devices>",
        `<devices>
    <disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vdx'/></disk>
    <disk type='network' device='disk'><source protocol='iscsi' name='iqn.2026-01.lan:t/1'><host name='san'/></source><target dev='vdy'/></disk>
    <disk type='network' device='lun'><source protocol='nbd' name='x'/><target dev='sdz'/></disk>
    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>
    <filesystem type='mount'><source dir='/'/><target dir='host'/></filesystem>`,
      )
      .replace("</domain>", "<qemu:commandline><qemu:arg value='-object'/><qemu:arg value='x'/></qemu:commandline></domain>");
    const out = stripUnrestorable(hostile);
    assert.deepEqual(out.stripped, [
      "disk vdx (block /dev/sda)",
      "disk vdy (network iscsi)",
      "lun sdz (network nbd)",
      "cdrom sda (file /iso/install.iso)",
      "hostdev (pci)",
      "filesystem (mount)",
      "<qemu:commandline> (QEMU pass-through)",
    ]);
    for (const gone of ["/dev/sda", "iscsi", "nbd", "hostdev", "filesystem", "qemu:arg", "install.iso"]) assert.ok(!out.xml.includes(gone), `${gone} left in ${out.xml}`);
    assert.deepEqual(domainXmlDisks(out.xml), domainXmlDisks(source), "the file disks stay for the restore to rewrite");
    assert.deepEqual(stripUnrestorable(out.xml).stripped, [], "nothing left to strip");
  });

  it("refuses what is not a domain XML", () => {
    for (const bad of ["<network/>", "<domain><name>x</domain>", "not xml"]) assert.throws(() => domainXmlDisks(bad), DomainXmlError, bad);
  });
});

/** Escapes text for use in XML character data and in quoted attribute values. */
export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/** What {@link labDomainXml} needs. */
export interface LabDomainXmlOptions {
  name: string;
  diskPath: string;
  /** Guest memory in MiB. Default 64. */
  memoryMiB?: number;
}

/**
 * Libvirt XML of a lab VM: pure TCG (no /dev/kvm here), no OS, one qcow2 disk as
 * virtio `vda` (so QEMU names its backend /machine/peripheral/virtio-disk0), a pty
 * console and no graphics (libvirt 9 rejects `<graphics type='none'/>`).
 */
export function labDomainXml(o: LabDomainXmlOptions): string {
  const memory = o.memoryMiB ?? 64;
  return `<domain type='qemu'>
  <name>${escapeXml(o.name)}</name>
  <memory unit='MiB'>${memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${escapeXml(o.diskPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <console type='pty'/>
  </devices>
</domain>
`;
}

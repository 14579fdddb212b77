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
  /** UEFI variable store of the domain: makes it a UEFI (OVMF, q35) domain instead of a BIOS one. */
  nvramPath?: string;
  /** An emulated TPM 2.0 (swtpm; libvirt keeps its state by the domain's UUID). */
  tpm?: boolean;
}

/** Debian 12's OVMF (package `ovmf`): the firmware code and the empty variable store new UEFI domains start from. */
export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS_TEMPLATE = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/** The `<os>` of a lab VM: SeaBIOS on `pc`, or OVMF on `q35` (pflash needs it) with its own variable store. */
function osXml(nvramPath: string | undefined): string {
  if (nvramPath === undefined) return "<type arch='x86_64' machine='pc'>hvm</type>";
  return `<type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash'>${OVMF_CODE}</loader>
    <nvram template='${OVMF_VARS_TEMPLATE}'>${escapeXml(nvramPath)}</nvram>`;
}

/**
 * Libvirt XML of a lab VM: pure TCG (no /dev/kvm here), no OS, one qcow2 disk as
 * virtio `vda` (so QEMU names its backend /machine/peripheral/virtio-disk0), a pty
 * console and no graphics (libvirt 9 rejects `<graphics type='none'/>`). BIOS unless it has an nvram path
 * (UEFI then, with ACPI, which libvirt requires for UEFI on x86).
 */
export function labDomainXml(o: LabDomainXmlOptions): string {
  const memory = o.memoryMiB ?? 64;
  return `<domain type='qemu'>
  <name>${escapeXml(o.name)}</name>
  <memory unit='MiB'>${memory}</memory>
  <vcpu>1</vcpu>
  <os>
    ${osXml(o.nvramPath)}
  </os>
  ${o.nvramPath === undefined ? "" : "<features><acpi/></features>"}
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${escapeXml(o.diskPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <console type='pty'/>
    ${o.tpm ? "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>" : ""}
  </devices>
</domain>
`;
}

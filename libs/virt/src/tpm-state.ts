import { join } from "node:path";

/*
 * Where libvirt keeps the state of a domain's emulated TPM (swtpm): `<root>/<domain UUID>/tpm2/` for TPM 2.0
 * (libvirt's default, /var/lib/libvirt/swtpm). Of that folder only the permanent
 * state file is worth keeping: it is all a TPM holds across a power cycle (its seeds, keys, NV indices, BitLocker's
 * sealed key); swtpm replaces it whole (a temporary file renamed), so one read of it is a consistent copy.
 */

/** libvirt's folder of swtpm state folders. */
export const SWTPM_STATE_ROOT = "/var/lib/libvirt/swtpm";

/** The name of swtpm's permanent TPM 2.0 state file. */
export const TPM2_STATE_FILE = "tpm2-00.permall";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The permanent TPM 2.0 state file of the domain with `uuid`; refuses anything that is not a UUID (it names a folder). */
export function tpm2StatePath(uuid: string, root: string = SWTPM_STATE_ROOT): string {
  if (!UUID.test(uuid)) throw new RangeError(`not a domain UUID: ${JSON.stringify(uuid)}`);
  return join(root, uuid.toLowerCase(), "tpm2", TPM2_STATE_FILE);
}

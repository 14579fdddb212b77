import { virsh, isNoSuchDomain } from "./virsh.js";

/**
 * Removes a domain from libvirt whatever its state: aborts a backup job (a killed
 * virtnbdbackup leaves one running), destroys it, and undefines it with its checkpoint
 * metadata. A domain that does not exist counts as removed. Never throws: returns the
 * errors met, so a caller can go on with the next domain.
 */
export async function removeDomain(uri: string, domain: string): Promise<Error[]> {
  try {
    await virsh(uri, ["dominfo", domain]);
  } catch (err) {
    return isNoSuchDomain(err) ? [] : [asError(err)];
  }
  // Abort before destroy so QEMU can close the NBD export and scratch files cleanly.
  // Both fail harmlessly when there is no job or the domain is not running.
  await virsh(uri, ["domjobabort", domain]).catch(() => undefined);
  await virsh(uri, ["destroy", domain]).catch(() => undefined);
  try {
    await virsh(uri, ["undefine", "--checkpoints-metadata", "--nvram", domain]);
    return [];
  } catch {
    // Older libvirt or non-UEFI setups may refuse --nvram; retry without it.
  }
  try {
    await virsh(uri, ["undefine", "--checkpoints-metadata", domain]);
    return [];
  } catch (err) {
    return isNoSuchDomain(err) ? [] : [asError(err)];
  }
}

/** Normalizes anything thrown into an Error. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Prints collected errors to stderr, one line each, under a heading. */
export function reportErrors(heading: string, errors: readonly Error[]): void {
  for (const err of errors) process.stderr.write(`${heading}: ${err.message}\n`);
}

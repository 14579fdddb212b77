import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_LAB_IMAGE_DIR, LAB_DOMAIN_PREFIX } from "./lab-constants.js";
import { DEFAULT_LIBVIRT_URI, ensureLibvirt } from "./libvirt-daemons.js";
import { asError, removeDomain, reportErrors } from "./teardown.js";
import { virsh } from "./virsh.js";

/**
 * Removes what earlier (crashed or killed) test runs left behind: every domain whose name
 * starts with `vmbs-lab-` (backup job aborted, destroyed, undefined) and everything in the
 * lab image folder. Tries everything, then throws an AggregateError if anything failed.
 * Starts libvirt if needed.
 * @param uri libvirt URI, default `qemu:///system`
 * @param imageDir lab image folder, default `/var/lib/libvirt/images/vmbs-lab`
 * @returns the names of the removed domains
 */
export async function sweepStaleLabDomains(
  uri: string = DEFAULT_LIBVIRT_URI,
  imageDir: string = DEFAULT_LAB_IMAGE_DIR,
): Promise<string[]> {
  await ensureLibvirt(uri);
  const names = (await virsh(uri, ["list", "--all", "--name"]))
    .split("\n")
    .filter((name) => name.startsWith(LAB_DOMAIN_PREFIX));
  const errors: Error[] = [];
  for (const name of names) errors.push(...(await removeDomain(uri, name)));
  let entries: string[] = [];
  try {
    entries = await readdir(imageDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") errors.push(asError(err));
  }
  for (const entry of entries) {
    await rm(join(imageDir, entry), { recursive: true, force: true }).catch((err) => errors.push(asError(err)));
  }
  if (errors.length > 0) {
    reportErrors("sweepStaleLabDomains", errors);
    throw new AggregateError(errors, `sweeping stale lab domains failed (${errors.length} errors)`);
  }
  return names;
}

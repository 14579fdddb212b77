import { basename, dirname, resolve } from "node:path";
import { VmbsError, backupRootMarker, domainNameSchema, drillScratchFolder } from "@vmbs/contracts";

export class UnsafeDomainPathError extends VmbsError {
  constructor(domain: string) {
    super("refused", `domain name ${JSON.stringify(domain.slice(0, 80))} cannot be used as a folder name under the backup root`);
  }
}

/**
 * The active chain folder of a domain, `<root>/<domain>`. Checked twice — by the name schema and by the
 * resolved path — so that no name can point outside the root. The root's marker file and the drills' scratch folder are never a chain folder.
 */
export function chainFolderPath(root: string, domain: string): string {
  const folder = resolve(root, domain);
  if (!domainNameSchema.safeParse(domain).success || domain === backupRootMarker || domain === drillScratchFolder || dirname(folder) !== resolve(root) || basename(folder) !== domain)
    throw new UnsafeDomainPathError(domain);
  return folder;
}

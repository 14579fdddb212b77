import { lstat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Libvirt } from "@vmbs/virt";
import { domainXmlNvram } from "./domain-xml.js";

/*
 * The UEFI variable store (nvram) of a checkpoint. virtnbdbackup copies the domain's nvram file into the set at each
 * backup as `<basename>.<checkpoint>` (virtnbdbackup.md §2.2), so a restore can bring the variables of that point in
 * time back together with the disks: Windows' boot entries and BitLocker's state live there.
 */

/** The set's copy of the nvram file at `checkpoint`, when the checkpoint's XML names one and the copy exists. */
export async function savedNvramCopy(setDir: string, checkpointXml: string, checkpoint: string): Promise<string | undefined> {
  const nvram = domainXmlNvram(checkpointXml);
  if (nvram === undefined) return undefined;
  const copy = join(setDir, `${basename(nvram)}.${checkpoint}`);
  return (await lstat(copy).then((s) => s.isFile(), () => false)) ? copy : undefined;
}

/** What an in-place restore does with the domain's nvram file. */
export type InPlaceNvram =
  /** The checkpoint's domain had no nvram (a BIOS domain): nothing to do. */
  | { kind: "none" }
  /** The domain's own nvram file `target` becomes the set's copy `saved`. */
  | { kind: "replace"; saved: string; target: string }
  /** The nvram file stays as it is, for the reason given. */
  | { kind: "keep"; why: string }
  /** The nvram file is shared with another domain: the restore is refused. */
  | { kind: "refuse"; why: string };

/**
 * Decides the nvram step of restoring `domain` in place at `checkpoint`. The file replaced is the one the domain's
 * current definition names (the saved XML's path may since belong to someone else), and only when no other
 * defined domain names the same file.
 */
export async function planInPlaceNvram(libvirt: Libvirt, domain: string, setDir: string, checkpointXml: string, checkpoint: string): Promise<InPlaceNvram> {
  if (domainXmlNvram(checkpointXml) === undefined) return { kind: "none" };
  const saved = await savedNvramCopy(setDir, checkpointXml, checkpoint);
  if (saved === undefined) return { kind: "keep", why: `the set holds no copy of the UEFI variables at ${checkpoint}` };
  const target = domainXmlNvram(await libvirt.domainXml(domain));
  if (target === undefined) return { kind: "keep", why: `${domain} has no UEFI variable store (nvram) now` };
  for (const other of await libvirt.listPersistentDomains()) {
    if (other.name === domain) continue;
    const theirs = domainXmlNvram(await libvirt.domainXml(other.name));
    if (theirs !== undefined && resolve(theirs) === resolve(target))
      return { kind: "refuse", why: `the nvram file ${target} of ${domain} is also the one of domain ${JSON.stringify(other.name)}; it is never replaced` };
  }
  return { kind: "replace", saved, target };
}

/** The plan step of an nvram decision, if it has one. */
export function inPlaceNvramStep(n: InPlaceNvram, checkpoint: string): string | undefined {
  if (n.kind === "replace") return `replace the UEFI variables ${n.target} with the copy saved at ${checkpoint} (the original kept aside until every file is in place)`;
  if (n.kind === "keep") return `leave the UEFI variables as they are: ${n.why}`;
  return undefined;
}

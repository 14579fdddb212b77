import { lstat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { isDomainGone, type Libvirt } from "@vmbs/virt";
import { domainXmlNvram } from "./domain-xml.js";
import type { InPlaceFile } from "./in-place-file.js";

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

/**
 * Decides the nvram step of restoring `domain` in place at `checkpoint`. The file replaced is the one the domain's
 * current definition names (the saved XML's path may since belong to someone else), and only when no other
 * defined domain names the same file.
 */
export async function planInPlaceNvram(libvirt: Libvirt, domain: string, setDir: string, checkpointXml: string, checkpoint: string): Promise<InPlaceFile> {
  if (domainXmlNvram(checkpointXml) === undefined) return { kind: "none" };
  const what = "the UEFI variables";
  const saved = await savedNvramCopy(setDir, checkpointXml, checkpoint);
  if (saved === undefined) return { kind: "keep", what, why: `the set holds no copy of them at ${checkpoint}` };
  const target = domainXmlNvram(await libvirt.domainXml(domain));
  if (target === undefined) return { kind: "keep", what, why: `${domain} has no UEFI variable store (nvram) now` };
  for (const other of await libvirt.listPersistentDomains()) {
    if (other.name === domain) continue;
    // A domain undefined since the listing names no file any more.
    const xml = await libvirt.domainXml(other.name).catch((err: unknown) => {
      if (isDomainGone(err)) return undefined;
      throw err;
    });
    if (xml === undefined) continue;
    const theirs = domainXmlNvram(xml);
    if (theirs !== undefined && resolve(theirs) === resolve(target))
      return { kind: "refuse", why: `the nvram file ${target} of ${domain} is also the one of domain ${JSON.stringify(other.name)}; it is never replaced` };
  }
  return { kind: "replace", what, saved, target };
}

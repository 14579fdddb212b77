import { randomBytes, randomUUID } from "node:crypto";
import { DOMParser, XMLSerializer } from "@xmldom/xmldom";
import { VmbsError } from "@vmbs/contracts";

/*
 * Domain XML edits with a real XML parser (virtnbdbackup.md: `virtnbdrestore -c` rewrites only the last disk's
 * path, and regex edits break on names with quotes or entities). @xmldom/xmldom keeps the document as written,
 * attributes and unknown elements included, so libvirt gets back everything we did not mean to change.
 */

/** A file-backed disk of a domain XML. */
export interface XmlDisk {
  target: string;
  file: string;
}

export class DomainXmlError extends VmbsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("refused", message, options);
  }
}

function parse(xml: string): Element {
  // xmldom reports an unclosed tag as a mere warning; libvirt writes none, so every complaint refuses the XML.
  const errors: string[] = [];
  const complain = (m: unknown): void => void errors.push(String(m));
  const doc = new DOMParser({ errorHandler: { warning: complain, error: complain, fatalError: complain } }).parseFromString(xml, "text/xml");
  const root = doc.documentElement;
  if (errors.length > 0 || !root || root.tagName !== "domain") throw new DomainXmlError(`not a domain XML: ${errors[0] ?? "no <domain> root"}`);
  return root;
}

const children = (el: Element, tag: string): Element[] => Array.from(el.childNodes as ArrayLike<Node>).filter((n): n is Element => n.nodeType === 1 && (n as Element).tagName === tag);
const child = (el: Element, tag: string): Element | undefined => children(el, tag)[0];

function fileDisks(root: Element): { el: Element; disk: XmlDisk }[] {
  const devices = child(root, "devices");
  if (!devices) return [];
  return children(devices, "disk").flatMap((el) => {
    const file = child(el, "source")?.getAttribute("file");
    const target = child(el, "target")?.getAttribute("dev");
    return el.getAttribute("device") === "disk" && file && target ? [{ el, disk: { target, file } }] : [];
  });
}

/** The file-backed disks (device "disk") of a domain XML. */
export function domainXmlDisks(xml: string): XmlDisk[] {
  return fileDisks(parse(xml)).map((d) => d.disk);
}

/** Targets of the disks (device "disk") that are not plain files: block devices, network or pool volumes. */
export function domainXmlOtherDisks(xml: string): string[] {
  const root = parse(xml);
  const files = new Set(fileDisks(root).map((d) => d.el));
  const devices = child(root, "devices");
  return (devices ? children(devices, "disk") : [])
    .filter((el) => el.getAttribute("device") === "disk" && !files.has(el))
    .map((el) => child(el, "target")?.getAttribute("dev") ?? "?");
}

/** The MAC of each NIC, in the XML's order (undefined where libvirt would pick one). */
export function domainXmlMacs(xml: string): (string | undefined)[] {
  const devices = child(parse(xml), "devices");
  return (devices ? children(devices, "interface") : []).map((iface) => child(iface, "mac")?.getAttribute("address")?.toLowerCase() || undefined);
}

/** A locally administered unicast MAC in QEMU's 52:54:00 range. */
export function randomMac(): string {
  return ["52", "54", "00", ...Array.from(randomBytes(3), (b) => b.toString(16).padStart(2, "0"))].join(":");
}

export interface NewDomainEdit {
  name: string;
  /** New image path per disk target; file disks not listed are dropped (they would share the original's image). */
  images: ReadonlyMap<string, string>;
  /** New path of the UEFI variable store, when the domain has one. */
  nvram?: string;
  /** The MAC of each NIC in the XML's order; default a random one each. */
  macs?: readonly string[];
}

/** A copy of `xml` as a new domain: new name and UUID, the given (else random) MACs, new image paths, its own nvram. */
export function rewriteAsNewDomain(xml: string, edit: NewDomainEdit): { xml: string; uuid: string; macs: string[] } {
  const root = parse(xml);
  const doc = root.ownerDocument;
  // A live XML carries the running id; a definition must not.
  root.removeAttribute("id");
  const set = (tag: string, value: string): void => {
    const el = child(root, tag) ?? root.appendChild(doc.createElement(tag));
    while (el.firstChild) el.removeChild(el.firstChild);
    el.appendChild(doc.createTextNode(value));
  };
  set("name", edit.name);
  const uuid = randomUUID();
  set("uuid", uuid);
  for (const { el, disk } of fileDisks(root)) {
    const image = edit.images.get(disk.target);
    if (image === undefined) el.parentNode?.removeChild(el);
    else child(el, "source")!.setAttribute("file", image);
  }
  const macs: string[] = [];
  const devices = child(root, "devices");
  for (const [i, iface] of (devices ? children(devices, "interface") : []).entries()) {
    const mac = child(iface, "mac") ?? iface.appendChild(doc.createElement("mac"));
    const address = edit.macs?.[i] ?? randomMac();
    mac.setAttribute("address", address);
    macs.push(address);
    // The original's tap device name would clash while both run.
    const target = child(iface, "target");
    if (target) iface.removeChild(target);
  }
  const nvram = child(root, "os") && child(child(root, "os")!, "nvram");
  if (nvram) {
    while (nvram.firstChild) nvram.removeChild(nvram.firstChild);
    if (edit.nvram) nvram.appendChild(doc.createTextNode(edit.nvram));
  }
  return { xml: new XMLSerializer().serializeToString(root), uuid, macs };
}

/** Where one disk's data lives: an image file, and optionally an NBD export on a unix socket as its raw backing file. */
export interface DiskSource {
  file: string;
  /** The qcow2 `file` is an overlay over this export (an instant VM); absent: a standalone image. */
  nbdSocket?: string;
}

/**
 * `xml` with the listed file disks pointed at their new sources: a qcow2 `file`, its backing chain given in full
 * (an NBD export over a unix socket, or none), so libvirt probes nothing. Other disks are kept as they are.
 */
export function withDiskSources(xml: string, sources: ReadonlyMap<string, DiskSource>): string {
  const root = parse(xml);
  const doc = root.ownerDocument;
  const element = (tag: string, attributes: Record<string, string>, ...inner: Element[]): Element => {
    const el = doc.createElement(tag);
    for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, v);
    for (const i of inner) el.appendChild(i);
    return el;
  };
  for (const { el, disk } of fileDisks(root)) {
    const source = sources.get(disk.target);
    if (!source) continue;
    child(el, "source")!.setAttribute("file", source.file);
    const driver = child(el, "driver") ?? el.insertBefore(element("driver", { name: "qemu" }), el.firstChild);
    driver.setAttribute("type", "qcow2");
    for (const old of children(el, "backingStore")) el.removeChild(old);
    const backing = source.nbdSocket
      ? element(
          "backingStore",
          { type: "network" },
          element("format", { type: "raw" }),
          element("source", { protocol: "nbd" }, element("host", { transport: "unix", socket: source.nbdSocket })),
          element("backingStore", {}),
        )
      : element("backingStore", {});
    el.insertBefore(backing, child(el, "source")!.nextSibling);
  }
  return new XMLSerializer().serializeToString(root);
}

const QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0";

/**
 * A saved domain XML without what a restored copy must not be defined with, and a line for each thing left out.
 * A restore brings back image files only; the saved XML (possibly a mirror's, possibly edited) would otherwise
 * have libvirt, as root, attach host block devices, iSCSI or network storage, host devices and host folders, or
 * pass arguments to QEMU. Kept: file disks (device "disk"), which the restore rewrites or drops.
 */
export function stripUnrestorable(xml: string): { xml: string; stripped: string[] } {
  const root = parse(xml);
  const stripped: string[] = [];
  const drop = (el: Element, what: string): void => {
    el.parentNode?.removeChild(el);
    stripped.push(what);
  };
  const devices = child(root, "devices");
  for (const el of devices ? children(devices, "disk") : []) {
    const type = el.getAttribute("type") || "file";
    const device = el.getAttribute("device") || "disk";
    if (type === "file" && device === "disk") continue;
    const source = child(el, "source");
    const from = source?.getAttribute("file") || source?.getAttribute("dev") || source?.getAttribute("protocol") || source?.getAttribute("pool") || "";
    drop(el, `${device} ${child(el, "target")?.getAttribute("dev") ?? "?"} (${type}${from ? ` ${from}` : ""})`);
  }
  for (const tag of ["hostdev", "filesystem"]) for (const el of devices ? children(devices, tag) : []) drop(el, `${tag} (${el.getAttribute("type") ?? "?"})`);
  for (const el of Array.from(root.childNodes as ArrayLike<Node>)) if (el.nodeType === 1 && (el as Element).namespaceURI === QEMU_NAMESPACE) drop(el as Element, `<${(el as Element).tagName}> (QEMU pass-through)`);
  return { xml: new XMLSerializer().serializeToString(root), stripped };
}

/** The UEFI variable store path of a domain XML, if any. */
export function domainXmlNvram(xml: string): string | undefined {
  const os = child(parse(xml), "os");
  const text = os ? child(os, "nvram")?.textContent?.trim() : undefined;
  return text ? text : undefined;
}

/** True when a domain XML has an emulated (swtpm) TPM, whose state libvirt keeps by the domain's UUID. */
export function domainXmlHasTpmEmulator(xml: string): boolean {
  const devices = child(parse(xml), "devices");
  return (devices ? children(devices, "tpm") : []).some((tpm) => child(tpm, "backend")?.getAttribute("type") === "emulator");
}

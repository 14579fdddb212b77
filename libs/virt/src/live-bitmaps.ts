import type { Libvirt } from "./libvirt.js";

/** A dirty bitmap held by a running QEMU, on one block node. */
export interface LiveBitmap {
  node: string;
  name: string;
}

/** Parses the QMP `query-block` answer: `inserted.dirty-bitmaps` per block device (QEMU ≥ 6 layout). */
export function parseLiveBitmaps(json: string): LiveBitmap[] {
  const reply = JSON.parse(json) as { return?: { inserted?: { "node-name"?: string; "dirty-bitmaps"?: { name?: unknown }[] } }[] };
  const out: LiveBitmap[] = [];
  for (const device of reply.return ?? []) {
    const node = device.inserted?.["node-name"];
    if (!node) continue;
    for (const b of device.inserted?.["dirty-bitmaps"] ?? []) if (typeof b.name === "string") out.push({ node, name: b.name });
  }
  return out;
}

/** Bitmaps of a running (or paused) domain, read through libvirt's QEMU monitor passthrough. */
export async function liveBitmaps(libvirt: Libvirt, domain: string): Promise<LiveBitmap[]> {
  return parseLiveBitmaps(await libvirt.qemuMonitorCommand(domain, JSON.stringify({ execute: "query-block" })));
}

/**
 * Removes one bitmap from a running QEMU (virtnbdbackup.md §4.3, "bitmap exists but libvirt has no
 * checkpoint"): the only safe way while the domain runs, since qemu-img must never touch a live image.
 */
export async function removeLiveBitmap(libvirt: Libvirt, domain: string, bitmap: LiveBitmap): Promise<void> {
  const cmd = { execute: "block-dirty-bitmap-remove", arguments: { node: bitmap.node, name: bitmap.name } };
  await libvirt.qemuMonitorCommand(domain, JSON.stringify(cmd));
}

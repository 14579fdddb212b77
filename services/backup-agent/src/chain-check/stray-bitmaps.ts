import { liveBitmaps, removeLiveBitmap, type Virsh } from "@vmbs/virt";

/**
 * Bitmaps of ours that a running QEMU holds but libvirt has no checkpoint for (a `checkpoint-delete
 * --metadata` by hand, lost libvirt state). The planner cannot see them (a running domain's bitmaps are not
 * in its snapshot), yet the next backup that creates a checkpoint of that name fails with "Bitmap already
 * exists". They back no checkpoint, so removing them loses nothing. Returns the names removed.
 */
export async function removeStrayLiveBitmaps(virsh: Virsh, domain: string): Promise<string[]> {
  const state = await virsh.domainState(domain);
  if (state !== "running" && state !== "paused") return [];
  const known = new Set(await virsh.checkpoints(domain));
  const removed: string[] = [];
  for (const bitmap of await liveBitmaps(virsh, domain)) {
    if (!bitmap.name.includes("virtnbdbackup") || known.has(bitmap.name)) continue;
    await removeLiveBitmap(virsh, domain, bitmap);
    removed.push(bitmap.name);
  }
  return removed;
}

import { liveBitmaps, removeLiveBitmap, type DomainState, type Libvirt } from "@vmbs/virt";

/**
 * Bitmaps of ours that a running QEMU holds but libvirt has no checkpoint for (a `checkpoint-delete
 * --metadata` by hand, lost libvirt state). The planner cannot see them (a running domain's bitmaps are not
 * in its snapshot), yet the next backup that creates a checkpoint of that name fails with "Bitmap already
 * exists". They back no checkpoint, so removing them loses nothing. Returns the names removed.
 */
export async function removeStrayLiveBitmaps(libvirt: Libvirt, domain: string, knownState?: DomainState): Promise<string[]> {
  // Asked together (this runs before a backup); the monitor only answers for an active domain.
  const [state, checkpoints, live] = await Promise.all([
    knownState ?? libvirt.domainState(domain),
    libvirt.checkpoints(domain),
    liveBitmaps(libvirt, domain).then(
      (bitmaps) => ({ bitmaps }),
      (error: unknown) => ({ error }),
    ),
  ]);
  if (state !== "running" && state !== "paused") return [];
  if ("error" in live) throw live.error;
  const known = new Set(checkpoints);
  const removed: string[] = [];
  for (const bitmap of live.bitmaps) {
    if (!bitmap.name.includes("virtnbdbackup") || known.has(bitmap.name)) continue;
    await removeLiveBitmap(libvirt, domain, bitmap);
    removed.push(bitmap.name);
  }
  return removed;
}

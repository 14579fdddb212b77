import type { ChainSnapshot, ChainStep } from "./chain-snapshot.js";

/*
 * Small builders for the step lists of a plan. They hold the safety rules that every plan shares:
 * leftovers first, leaf-first checkpoint removal, and qemu-img never touching a running domain's image.
 */

/** virtnbdbackup treats every checkpoint whose name contains this as its own (and deletes it on a full). */
export function isOurs(name: string): boolean {
  return name.includes("virtnbdbackup");
}

/** Index N of `virtnbdbackup.N`, or -1 for other names; used to order removals newest first. */
function checkpointIndex(name: string): number {
  const m = /^virtnbdbackup\.(\d+)$/.exec(name);
  return m?.[1] !== undefined ? Number(m[1]) : -1;
}

/** Newest first, so an interrupted removal always leaves a shorter, still consistent chain behind. */
function newestFirst(names: readonly string[]): string[] {
  return [...names].sort((a, b) => checkpointIndex(b) - checkpointIndex(a) || (a < b ? 1 : a > b ? -1 : 0));
}

/** /var/tmp leftovers: stop stale qemu-nbd first (it holds the image lock), then remove the files. */
export function tmpSteps(s: ChainSnapshot): ChainStep[] {
  const { sockets, scratch, pidFiles } = s.staleTmp;
  const steps: ChainStep[] = [];
  if (pidFiles.length > 0) steps.push({ op: "kill-qemu-nbd", pidFiles: [...pidFiles] });
  const paths = [...sockets, ...scratch, ...pidFiles];
  if (paths.length > 0) steps.push({ op: "clean-tmp", paths });
  return steps;
}

/** A sentence about the leftover cleanup, or "" when there is none. */
export function tmpNote(s: ChainSnapshot, withJob: boolean): string {
  const { sockets, scratch, pidFiles } = s.staleTmp;
  const parts: string[] = [];
  if (withJob) parts.push("the leftover backup job is aborted first");
  if (pidFiles.length > 0) parts.push(`stale qemu-nbd processes (${pidFiles.join(", ")}) are stopped`);
  const n = sockets.length + scratch.length + pidFiles.length;
  if (n > 0) parts.push(`${n} stale /var/tmp file${n === 1 ? "" : "s"} removed`);
  if (parts.length === 0) return "";
  const text = parts.join(", ");
  return ` Housekeeping: ${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/**
 * Removes every checkpoint of ours from libvirt, and for a shut-off domain also every bitmap of ours from
 * each image (the domain must be shut off: qemu-img on a running domain's image can corrupt it).
 * `bitmapsLost` makes the libvirt deletes metadata-only, because a live delete fails on a missing bitmap.
 */
export function pruneSteps(
  libvirtOurs: readonly string[],
  offline: boolean,
  bitmaps: Record<string, string[]> | null,
  bitmapsLost: boolean,
): ChainStep[] {
  const steps: ChainStep[] = newestFirst(libvirtOurs).map(
    (name): ChainStep => ({ op: "delete-checkpoint", name, metadataOnly: offline || bitmapsLost }),
  );
  if (offline && bitmaps) {
    for (const [image, names] of Object.entries(bitmaps)) {
      for (const name of newestFirst(names.filter(isOurs))) steps.push({ op: "remove-bitmap", image, name });
    }
  }
  return steps;
}

/** Formats a list of names for a reason sentence. */
export function list(names: readonly string[]): string {
  return names.length === 0 ? "none" : names.join(", ");
}

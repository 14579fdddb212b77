import { execa } from "execa";

/** A qemu-img call that failed; `stderr` carries qemu's own explanation. */
export class QemuImgError extends Error {
  readonly stderr: string;
  constructor(what: string, stderr: string) {
    super(`qemu-img ${what} failed: ${stderr.trim()}`);
    this.name = "QemuImgError";
    this.stderr = stderr;
  }
}

/** `info` reads a header; `bitmap --remove` rewrites one bitmap's metadata. Neither should take minutes. */
const INFO_TIMEOUT_MS = 60_000;
const BITMAP_TIMEOUT_MS = 300_000;

/** One persistent bitmap of a qcow2 image. */
export interface ImageBitmap {
  name: string;
  /**
   * Flag "in-use" on a closed image: QEMU had it open and never wrote it back (SIGKILL, host crash), so the
   * bitmap is inconsistent and must not be trusted.
   */
  inUse: boolean;
}

/** Extracts the persistent bitmaps from `qemu-img info --output json` (format-specific.data.bitmaps). */
export function parseImageBitmaps(json: string): ImageBitmap[] {
  const info = JSON.parse(json) as { "format-specific"?: { data?: { bitmaps?: { name?: unknown; flags?: unknown }[] } } };
  const bitmaps = info["format-specific"]?.data?.bitmaps ?? [];
  return bitmaps.flatMap((b) =>
    typeof b.name === "string" ? [{ name: b.name, inUse: Array.isArray(b.flags) && b.flags.includes("in-use") }] : [],
  );
}

/**
 * Persistent bitmap names of a qcow2 image. `-U` (no lock) because a paused start or a stale qemu-nbd may
 * hold the lock; callers only trust the answer for a shut-off domain, whose image nobody writes.
 */
export async function imageBitmaps(image: string): Promise<ImageBitmap[]> {
  return parseImageBitmaps(await imageInfoJson(image));
}

/** `qemu-img info --output json -U` (no lock: the image's domain may run). */
async function imageInfoJson(image: string): Promise<string> {
  const result = await execa("qemu-img", ["info", "--output", "json", "-U", "--", image], { reject: false, stdin: "ignore", timeout: INFO_TIMEOUT_MS });
  if (result.failed) throw new QemuImgError(`info ${image}`, String(result.stderr || result.message));
  return String(result.stdout);
}

/** The format of an image file as qemu-img probes it (`qcow2`, `raw`, …). */
export async function imageFormat(image: string): Promise<string> {
  const format = (JSON.parse(await imageInfoJson(image)) as { format?: unknown }).format;
  if (typeof format !== "string") throw new QemuImgError(`info ${image}`, "no format in its answer");
  return format;
}

/**
 * `qemu-img bitmap --remove`. Must never run on the image of a running domain (it would corrupt the image);
 * qemu-img takes the image lock, so a running QEMU makes it fail rather than write.
 */
export async function removeImageBitmap(image: string, name: string): Promise<void> {
  const result = await execa("qemu-img", ["bitmap", "--remove", "--", image, name], { reject: false, stdin: "ignore", timeout: BITMAP_TIMEOUT_MS });
  if (result.failed) throw new QemuImgError(`bitmap --remove ${name} ${image}`, String(result.stderr || result.message));
}

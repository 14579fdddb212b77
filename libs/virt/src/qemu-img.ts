import { execa } from "execa";
import { VmbsError } from "@vmbs/contracts";

/** A qemu-img call that failed; `stderr` carries qemu's own explanation. */
export class QemuImgError extends VmbsError {
  readonly stderr: string;
  constructor(what: string, stderr: string) {
    super("failed", `qemu-img ${what} failed: ${stderr.trim()}`);
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

/** What `qemu-img check` said about an image. */
export interface ImageCheck {
  /** No corruption (leaked clusters waste space but lose no data, and count as ok). */
  ok: boolean;
  /** The format has no consistency check (raw): nothing was checked. */
  unsupported: boolean;
  /** qemu-img's own words when not ok. */
  detail: string;
}

/** Reading every cluster's metadata of a large image takes a while, but not hours. */
const CHECK_TIMEOUT_MS = 30 * 60_000;

/**
 * Pure: `qemu-img check`'s exit status → verdict. 0 = clean, 3 = only leaked clusters, 63 = the format cannot be
 * checked; 2 (corruption), 1 (check not completed) or anything else is a failure.
 */
export function judgeImageCheck(exitCode: number | undefined, output: string): ImageCheck {
  if (exitCode === 0 || exitCode === 3) return { ok: true, unsupported: false, detail: "" };
  if (exitCode === 63) return { ok: true, unsupported: true, detail: "" };
  const detail = output.trim().split("\n").filter((l) => l.trim() !== "").slice(-3).join("; ");
  return { ok: false, unsupported: false, detail: `exit ${exitCode ?? "?"}${detail ? `: ${detail}` : ""}` };
}

/** `qemu-img check` of an image nobody else has open (it takes the image lock). */
export async function checkImage(image: string, signal?: AbortSignal): Promise<ImageCheck> {
  const r = await execa("qemu-img", ["check", "--", image], { reject: false, stdin: "ignore", timeout: CHECK_TIMEOUT_MS, cancelSignal: signal });
  if (r.timedOut || r.isCanceled) throw new QemuImgError(`check ${image}`, r.timedOut ? `no answer within ${CHECK_TIMEOUT_MS} ms` : "cancelled");
  return judgeImageCheck(r.exitCode, `${String(r.stdout)}\n${String(r.stderr)}`);
}

/** `virtual-size` of `qemu-img info --output json` (also the format of the engine's `*.qcow.json`), or undefined. */
export function parseVirtualSize(json: string): number | undefined {
  const size = (JSON.parse(json) as { "virtual-size"?: unknown })["virtual-size"];
  return typeof size === "number" && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

/** The virtual size (bytes) of an image. */
export async function imageVirtualSize(image: string, o: { unlocked?: boolean } = {}): Promise<number> {
  const r = await execa("qemu-img", ["info", "--output", "json", ...(o.unlocked ? ["-U"] : []), "--", image], { reject: false, stdin: "ignore", timeout: INFO_TIMEOUT_MS });
  if (r.failed) throw new QemuImgError(`info ${image}`, String(r.stderr || r.message));
  const size = parseVirtualSize(String(r.stdout));
  if (size === undefined) throw new QemuImgError(`info ${image}`, "no virtual-size in its answer");
  return size;
}

/** The fraction done of one `qemu-img convert -p` progress figure, e.g. `    (42.19/100%)`; undefined for anything else. */
export function convertProgress(text: string): number | undefined {
  const m = /\((\d{1,3}\.\d{2})\/100%\)/.exec(text);
  return m ? Math.min(1, Number(m[1]) / 100) : undefined;
}

/**
 * `qemu-img convert -O <format>`: a copy of `source` in `format` at `dest` (which must not exist: the caller writes
 * a partial name). `timeoutMs` bounds the copy of a large image; `signal` cancels it. With `onProgress`, qemu-img
 * reports how far it is (`-p`, the fraction of the virtual size gone through) and each figure is handed on.
 */
export async function convertImage(source: string, format: string, dest: string, o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (fraction: number) => void }): Promise<void> {
  const p = execa("qemu-img", ["convert", ...(o.onProgress ? ["-p"] : []), "-O", format, "--", source, dest], { reject: false, stdin: "ignore", timeout: o.timeoutMs, cancelSignal: o.signal, buffer: { stdout: false } });
  p.stdout.setEncoding("utf8");
  // Each figure ends with \r: the last one of a chunk is the newest.
  p.stdout.on("data", (chunk: string) => {
    const figures = chunk.split("\r").map(convertProgress).filter((f) => f !== undefined);
    if (figures.length > 0) o.onProgress?.(figures.at(-1)!);
  });
  const r = await p;
  if (r.failed) throw new QemuImgError(`convert ${source}`, r.timedOut ? `no answer within ${o.timeoutMs} ms` : r.isCanceled ? "cancelled" : String(r.stderr || r.message));
}

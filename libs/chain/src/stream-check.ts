import { open, type FileHandle } from "node:fs/promises";

/*
 * A structural check of one virtnbdbackup stream file (virtnbdbackup.md §3.4), because 1.9.15 has no verify.
 * Frames are `<kind> <start:016x> <length:016x>\r\n` (40 bytes): meta + JSON, data + payload + \r\n, zero,
 * stop, and for compressed streams a trailer (JSON list of compressed sizes, \r\n, comp frame) at the end.
 * It finds truncation and broken framing; it cannot find flipped bits inside a payload.
 */

const FRAME_LEN = 40;
/**
 * The meta header and the compression trailer are JSON read into memory; real ones are a few hundred bytes to
 * a few MiB (the trailer lists one size per compressed block). A length field beyond this is corruption, and
 * is refused before anything is allocated for it.
 */
export const MAX_JSON_FRAME = 64 * 1024 * 1024;
const framePattern = /^(meta|data|zero|stop|comp) ([0-9a-f]{16}) ([0-9a-f]{16})\r\n$/;

export type StreamCheck = { ok: true } | { ok: false; problem: string };

interface Frame {
  kind: string;
  /** Exact up to 2^53; a larger field (16 hex digits allow 2^64) comes out larger still, never smaller. */
  length: number;
}

/** Reads at most `length` bytes; callers bound `length` by the file size and MAX_JSON_FRAME first. */
async function readAt(fh: FileHandle, pos: number, length: number): Promise<Buffer> {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_JSON_FRAME) throw new RangeError(`refusing to read ${length} bytes at ${pos}`);
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, pos);
  return buf.subarray(0, bytesRead);
}

async function frameAt(fh: FileHandle, pos: number, size: number): Promise<Frame | string> {
  if (pos + FRAME_LEN > size) return `the file ends at byte ${size} inside the frame header at ${pos} (truncated)`;
  const m = framePattern.exec((await readAt(fh, pos, FRAME_LEN)).toString("latin1"));
  if (!m) return `no valid frame header at byte ${pos}`;
  return { kind: m[1]!, length: parseInt(m[3]!, 16) };
}

/** Position where the compressed stream's trailer starts (its stop frame sits right before it), or a problem. */
async function trailerStart(fh: FileHandle, size: number): Promise<number | string> {
  const comp = await frameAt(fh, size - FRAME_LEN, size);
  if (typeof comp === "string" || comp.kind !== "comp") return "the compression trailer is missing (truncated)";
  const start = size - FRAME_LEN - 2 - comp.length;
  if (start < FRAME_LEN) return `the compression trailer claims ${comp.length} bytes, more than the file holds (corrupt)`;
  if (comp.length > MAX_JSON_FRAME) return `the compression trailer claims ${comp.length} bytes, over the ${MAX_JSON_FRAME}-byte limit (corrupt)`;
  try {
    JSON.parse((await readAt(fh, start, comp.length)).toString("utf8"));
  } catch {
    return "the compression trailer is not valid JSON";
  }
  return start;
}

/** Walks every frame of an uncompressed stream, or checks head and tail of a compressed one. */
export async function checkStreamFile(path: string): Promise<StreamCheck> {
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    const meta = await frameAt(fh, 0, size);
    if (typeof meta === "string") return { ok: false, problem: meta };
    if (meta.kind !== "meta") return { ok: false, problem: "the stream does not start with a meta frame" };
    if (FRAME_LEN + meta.length + 2 > size) return { ok: false, problem: `the meta frame claims ${meta.length} bytes but the file ends at ${size} (truncated or corrupt)` };
    if (meta.length > MAX_JSON_FRAME) return { ok: false, problem: `the meta frame claims ${meta.length} bytes, over the ${MAX_JSON_FRAME}-byte limit (corrupt)` };
    let info: { compressed?: unknown };
    try {
      info = JSON.parse((await readAt(fh, FRAME_LEN, meta.length)).toString("utf8")) as { compressed?: unknown };
    } catch {
      return { ok: false, problem: "the meta header is not valid JSON (truncated or corrupt)" };
    }
    if (info.compressed !== false && info.compressed !== undefined && info.compressed !== 0) {
      const start = await trailerStart(fh, size);
      if (typeof start === "string") return { ok: false, problem: start };
      const stop = await frameAt(fh, start - FRAME_LEN, size);
      return typeof stop !== "string" && stop.kind === "stop" ? { ok: true } : { ok: false, problem: "no stop frame before the compression trailer" };
    }
    let pos = FRAME_LEN + meta.length + 2;
    for (;;) {
      const frame = await frameAt(fh, pos, size);
      if (typeof frame === "string") return { ok: false, problem: frame };
      if (frame.kind === "stop") {
        return pos + FRAME_LEN === size ? { ok: true } : { ok: false, problem: `${size - pos - FRAME_LEN} unexpected bytes after the stop frame` };
      }
      if (frame.kind === "zero") pos += FRAME_LEN;
      else if (frame.kind === "data") {
        const end = pos + FRAME_LEN + frame.length;
        if (end + 2 > size) return { ok: false, problem: `the data frame at byte ${pos} needs ${frame.length} bytes but the file ends at ${size} (truncated)` };
        if ((await readAt(fh, end, 2)).toString("latin1") !== "\r\n") return { ok: false, problem: `the data frame at byte ${pos} is not terminated` };
        pos = end + 2;
      } else return { ok: false, problem: `unexpected ${frame.kind} frame at byte ${pos}` };
    }
  } finally {
    await fh.close();
  }
}

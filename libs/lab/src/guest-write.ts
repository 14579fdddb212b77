import { execa } from "execa";
import { confirmInLog, domainLogPath, logSize } from "./qemu-log.js";
import { hmp, virsh } from "./virsh.js";

/** A block of guest disk bytes to fill with one byte value. */
export interface GuestWrite {
  /** Byte offset into the guest disk. */
  offset: number;
  /** Number of bytes. */
  length: number;
  /** Fill byte, 0..255. */
  pattern: number;
}

/** One qemu-io `write` command and the range it covers. */
interface WriteChunk {
  command: string;
  offset: number;
  size: number;
}

/** qemu-io allocates a buffer of the full request size, so big writes go in pieces. */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/** QOM path of the block backend of the first virtio disk (libvirt alias virtio-disk0). */
const VDA_BACKEND = "/machine/peripheral/virtio-disk0/virtio-backend";

/**
 * Writes through the running QEMU of `domain` (HMP qemu-io on vda's backend), as a guest
 * write would: dirty bitmaps of live backups see it. HMP answers rc 0 and (QEMU 7.2) an
 * empty text even when qemu-io failed, because qemu-io prints to QEMU's stdout; so the
 * range is checked first and each chunk is confirmed in the domain log when readable.
 */
export async function writeLive(uri: string, domain: string, w: GuestWrite): Promise<void> {
  const chunks = writeChunks(w);
  await assertWithinDisk(uri, domain, w);
  const log = await domainLogPath(uri, domain);
  for (const chunk of chunks) {
    const from = log === undefined ? 0 : await logSize(log);
    const output = await hmp(uri, domain, `qemu-io -d ${VDA_BACKEND} "${chunk.command}"`);
    assertNoError(output, `qemu-io on ${domain}`);
    if (log !== undefined) {
      const wrote = `wrote ${chunk.size}/${chunk.size} bytes at offset ${chunk.offset}`;
      await confirmInLog(log, from, wrote, `qemu-io "${chunk.command}" on ${domain}`);
    }
  }
}

/** Makes a live QEMU write vda's cached qcow2 metadata to the image file, so readers of the file see recent writes. */
export async function flushLive(uri: string, domain: string): Promise<void> {
  const output = await hmp(uri, domain, `qemu-io -d ${VDA_BACKEND} "flush"`);
  assertNoError(output, `flush on ${domain}`);
}

/** Writes into a qcow2 image of a shut-off domain; qemu-io updates its persistent bitmaps. */
export async function writeImage(imagePath: string, w: GuestWrite): Promise<void> {
  const args = ["-f", "qcow2"];
  for (const { command } of writeChunks(w)) args.push("-c", command);
  // Offline qemu-io exits non-zero on a failed command, which execa turns into a rejection.
  const result = await execa("qemu-io", [...args, imagePath], { stdin: "ignore", timeout: 10 * 60_000 });
  assertNoError(`${result.stdout}\n${result.stderr}`, `qemu-io on ${imagePath}`);
}

/** qemu-io `write -P` commands covering the request in chunks of at most 64 MiB. */
function writeChunks(w: GuestWrite): WriteChunk[] {
  for (const [key, value] of Object.entries({ offset: w.offset, length: w.length })) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${key} must be a non-negative integer`);
  }
  if (w.length === 0) throw new RangeError("length must be positive");
  if (!Number.isInteger(w.pattern) || w.pattern < 0 || w.pattern > 255) {
    throw new RangeError("pattern must be a byte (0..255)");
  }
  const hex = `0x${w.pattern.toString(16).padStart(2, "0")}`;
  const chunks: WriteChunk[] = [];
  for (let done = 0; done < w.length; done += MAX_CHUNK_BYTES) {
    const offset = w.offset + done;
    const size = Math.min(MAX_CHUNK_BYTES, w.length - done);
    chunks.push({ command: `write -P ${hex} ${offset} ${size}`, offset, size });
  }
  return chunks;
}

/** Rejects writes past the end of vda with a clear message (QEMU's is a bare EIO). */
async function assertWithinDisk(uri: string, domain: string, w: GuestWrite): Promise<void> {
  const info = await virsh(uri, ["domblkinfo", domain, "vda"]);
  const capacity = Number(/^Capacity:\s+(\d+)/m.exec(info)?.[1]);
  if (!Number.isSafeInteger(capacity)) throw new Error(`cannot read the size of vda of ${domain}: ${info}`);
  if (w.offset + w.length > capacity) {
    throw new RangeError(`write of ${w.length} bytes at ${w.offset} ends past vda of ${domain} (${capacity} bytes)`);
  }
}

function assertNoError(output: string, what: string): void {
  if (/error|failed/i.test(output)) throw new Error(`${what} failed: ${output.trim()}`);
}

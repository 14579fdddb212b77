import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { ChainFolder } from "./chain-folder.js";
import { checksummedFilesOfCheckpoint } from "./chain-files.js";
import type { StreamedDigest } from "./streamed-checksums.js";

/*
 * Checksums of the data files (and the agent's TPM state copy), recorded by the agent after each backup for the data that run wrote (so a
 * backup hashes only its new checkpoint) and re-checked by restore drills. One file per checkpoint,
 * `checksums/<checkpoint>.sha256`, in `sha256sum` format with names relative to the chain folder, so a
 * person can check a chain with stock tools: `cd <chain> && sha256sum -c checksums/virtnbdbackup.2.sha256`.
 */

/** The folder of the checksum files inside a chain folder. */
const CHECKSUMS_DIR = "checksums";

/** One line of a checksum file: the hex sha256 of `file` (relative to the chain folder). */
export interface ChecksumEntry {
  file: string;
  sha256: string;
}

/** Path of a checkpoint's checksum file, relative to the chain folder. */
export function checksumFileOf(checkpoint: string): string {
  return `${CHECKSUMS_DIR}/${checkpoint}.sha256`;
}

/** `sha256sum` text mode lines: `<hex>  <name>`, one per entry, sorted by name. */
export function formatChecksums(entries: readonly ChecksumEntry[]): string {
  for (const e of entries)
    // sha256sum escapes such names with a leading backslash; the engine's names never need it.
    if (!/^[0-9a-f]{64}$/.test(e.sha256) || e.file === "" || /[\n\r\\]/.test(e.file)) throw new RangeError(`cannot record a checksum for ${JSON.stringify(e.file)}`);
  return [...entries].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)).map((e) => `${e.sha256}  ${e.file}\n`).join("");
}

export type ParsedChecksums = { ok: true; entries: ChecksumEntry[] } | { ok: false; reason: string };

/**
 * Parses `sha256sum` output (text `<hex>  <name>` or binary `<hex> *<name>` lines; blank lines ignored).
 * Anything else is refused whole: a checksum file we cannot read proves nothing.
 */
export function parseChecksums(text: string): ParsedChecksums {
  const entries: ChecksumEntry[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) return { ok: false, reason: `line ${i + 1} is not "<sha256>  <file>"` };
    const file = m[2]!;
    if (file.startsWith("/") || file.split("/").includes("..")) return { ok: false, reason: `line ${i + 1} names ${JSON.stringify(file)}, outside the chain folder` };
    entries.push({ file, sha256: m[1]!.toLowerCase() });
  }
  if (entries.length === 0) return { ok: false, reason: "it lists no file" };
  return { ok: true, entries };
}

/** sha256 of a file, streamed (data files are many GiB). */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash, { signal });
  return hash.digest("hex");
}

/**
 * Writes `checksums/<checkpoint>.sha256` for the finished data files (and TPM state copy) of `checkpoint`, atomically (a hidden
 * temporary file renamed into place). A digest taken while the engine wrote (`streamed`, see
 * streamed-checksums.ts) is used when it covers the whole file; any other file is hashed now. Returns the entries
 * written; none when the checkpoint has no data file.
 */
export async function recordChecksums(folder: ChainFolder, checkpoint: string, signal?: AbortSignal, streamed?: ReadonlyMap<string, StreamedDigest>): Promise<ChecksumEntry[]> {
  const files = checksummedFilesOfCheckpoint(folder, checkpoint);
  if (files.length === 0) return [];
  const entries: ChecksumEntry[] = [];
  for (const f of files) {
    const digest = streamed?.get(f.path);
    entries.push({ file: f.path, sha256: digest && digest.bytes === f.size ? digest.sha256 : await sha256File(join(folder.dir, f.path), signal) });
  }
  const dir = join(folder.dir, CHECKSUMS_DIR);
  await mkdir(dir, { recursive: true });
  const target = join(folder.dir, checksumFileOf(checkpoint));
  const tmp = join(dir, `.${checkpoint}.sha256.vmbs-tmp`);
  try {
    await writeFile(tmp, formatChecksums(entries));
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return entries;
}

/** A problem one checkpoint's data files have against its recorded checksums. */
export interface ChecksumFault {
  checkpoint: string;
  /** The data file (or the checksum file itself, when that is unreadable), relative to the chain folder. */
  file: string;
  reason: string;
}

/** What re-checking one checkpoint found. */
export interface ChecksumVerdict {
  /** Data files whose hash equals the recorded one. */
  verified: string[];
  /** Data files without a recorded checksum (written before checksums were recorded): neither good nor bad. */
  unverified: string[];
  faults: ChecksumFault[];
}

/**
 * Pure: compares what a checkpoint's checksum file recorded (`recorded`: parsed file, or undefined when there
 * is none) with its data files now (`present`) and their hashes (`actual`, file → hex; files not hashed are
 * absent). A recorded file that is gone is a fault; a data file nobody recorded is only unverified.
 */
export function judgeChecksums(checkpoint: string, recorded: ParsedChecksums | undefined, present: readonly string[], actual: ReadonlyMap<string, string>): ChecksumVerdict {
  const out: ChecksumVerdict = { verified: [], unverified: [], faults: [] };
  if (recorded && !recorded.ok) {
    out.faults.push({ checkpoint, file: checksumFileOf(checkpoint), reason: `${checksumFileOf(checkpoint)} is unreadable: ${recorded.reason}` });
    out.unverified.push(...present);
    return out;
  }
  const listed = new Map((recorded?.entries ?? []).map((e) => [e.file, e.sha256]));
  for (const [file, sha256] of listed) {
    const now = actual.get(file);
    if (!present.includes(file)) out.faults.push({ checkpoint, file, reason: `${file} is missing, though ${checksumFileOf(checkpoint)} records it` });
    else if (now === undefined) out.unverified.push(file);
    else if (now !== sha256) out.faults.push({ checkpoint, file, reason: `${file} does not match its recorded sha256 (${checksumFileOf(checkpoint)}): the data changed after the backup` });
    else out.verified.push(file);
  }
  for (const file of present) if (!listed.has(file)) out.unverified.push(file);
  return out;
}

/**
 * Re-checks every recorded checksum of `checkpoint` in a read chain folder: reads its checksum file, hashes
 * the files it lists, and judges them (see {@link judgeChecksums}).
 */
export async function verifyChecksums(folder: ChainFolder, checkpoint: string, signal?: AbortSignal): Promise<ChecksumVerdict> {
  const present = checksummedFilesOfCheckpoint(folder, checkpoint).map((f) => f.path);
  const sumsPath = checksumFileOf(checkpoint);
  let recorded: ParsedChecksums | undefined;
  if (folder.files.some((f) => f.path === sumsPath)) {
    recorded = await readFile(join(folder.dir, sumsPath), "utf8").then(parseChecksums, (err: unknown) => ({ ok: false as const, reason: (err as Error).message }));
  }
  const actual = new Map<string, string>();
  if (recorded?.ok)
    for (const e of recorded.entries) if (present.includes(e.file)) actual.set(e.file, await sha256File(join(folder.dir, e.file), signal));
  return judgeChecksums(checkpoint, recorded, present, actual);
}

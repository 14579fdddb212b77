import { join } from "node:path";
import { dataFiles, oldestMtime } from "./chain-files.js";
import { readChainFolder } from "./chain-folder.js";
import { localFileLister, type FileLister } from "./file-lister.js";
import type { ChainPoints } from "./retention.js";

/** libvirt writes `<creationTime>` in epoch seconds into each checkpoint XML (virsh checkpoint-dumpxml). */
const CREATION_TIME = /<creationTime>\s*(\d+)\s*<\/creationTime>/;
/** A checkpoint XML is a few KiB (the domain XML inside included); a bigger file is not one and is not read. */
const MAX_CHECKPOINT_XML_BYTES = 4 * 1024 * 1024;

/**
 * The restore points of one archived chain folder, for calendar retention: the `<creationTime>` of each
 * `checkpoints/*.xml`; without any (a copy backup, or XMLs lost), the mtimes of its data files; without
 * those, its oldest file. An unreadable XML is skipped, not fatal: a missing point can only make a chain
 * look older, and the count rule still keeps the newest chains. `fs` is where the chain lives (the local
 * disk by default; the mirror passes its SFTP lister).
 */
export async function readChainPoints(backupRoot: string, domain: string, archiveName: string, fs: FileLister = localFileLister): Promise<ChainPoints> {
  const dir = join(backupRoot, archiveName);
  const folder = await readChainFolder(dir, domain, fs);
  const points: number[] = [];
  for (const f of folder.files) {
    if (!/^checkpoints\/[^/]+\.xml$/.test(f.path) || f.size > MAX_CHECKPOINT_XML_BYTES) continue;
    const text = await fs.readFile(join(dir, f.path)).catch(() => "");
    const m = CREATION_TIME.exec(text);
    if (m?.[1]) points.push(Number(m[1]) * 1000);
  }
  if (points.length === 0) points.push(...dataFiles(folder).map((f) => f.mtimeMs));
  if (points.length === 0) {
    const oldest = oldestMtime(folder);
    if (oldest !== null) points.push(oldest);
  }
  return { name: archiveName, points: points.sort((a, b) => a - b) };
}

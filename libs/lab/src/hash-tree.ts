import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** sha256 of every file below `dir`, by relative path: two equal results mean the same files, byte for byte. */
export async function hashTree(dir: string, rel = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) Object.assign(out, await hashTree(dir, path));
    else out[path] = createHash("sha256").update(await readFile(join(dir, path))).digest("hex");
  }
  return out;
}

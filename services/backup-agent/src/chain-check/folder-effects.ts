import { rename, rm, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { isToolFile } from "@vmbs/chain";

/** Resolves a plan's relative path and proves it stays inside the chain folder. */
export function insideFolder(folder: string, rel: string): string {
  const path = resolve(folder, rel);
  const back = relative(folder, path);
  if (rel === "" || isAbsolute(rel) || back === "" || back.startsWith("..") || isAbsolute(back))
    throw new Error(`refusing to touch ${JSON.stringify(rel)}: it is not inside ${folder}`);
  return path;
}

/**
 * Deletes files named relative to the chain folder (never folders; missing files are fine). Only files the
 * tool makes (isToolFile) may be named: anything else is refused before the first deletion.
 */
export async function deleteChainFiles(folder: string, domain: string, files: readonly string[]): Promise<void> {
  const foreign = files.filter((rel) => !isToolFile(rel, domain));
  if (foreign.length > 0) throw new Error(`refusing to delete ${foreign.join(", ")}: not files virtnbdbackup or this tool writes`);
  for (const rel of files) await rm(insideFolder(folder, rel), { force: true });
}

/**
 * The engine writes `.cpt` with Python's json.dump: `["virtnbdbackup.0", "virtnbdbackup.1"]`, no newline.
 * Written to a temporary name and renamed, so a crash never leaves half a list.
 */
export function cptText(checkpoints: readonly string[]): string {
  return `[${checkpoints.map((c) => JSON.stringify(c)).join(", ")}]`;
}

export async function rewriteCpt(folder: string, domain: string, checkpoints: readonly string[]): Promise<void> {
  const target = insideFolder(folder, `${domain}.cpt`);
  const tmp = join(folder, `.${domain}.cpt.vmbs-tmp`);
  await writeFile(tmp, cptText(checkpoints), "utf8");
  await rename(tmp, target);
}

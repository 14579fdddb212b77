import { lstat, realpath } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import type { Libvirt } from "@vmbs/virt";
import { VmbsError } from "@vmbs/contracts";

/*
 * The service runs as root: every folder a request names is resolved (`..`, symlinks) and must be one the host
 * already trusts, i.e. inside the backup root to read sets, or an image folder of libvirt's to write images.
 */

/** A request path outside the folders the service reads or writes. */
export class PathRefusedError extends VmbsError {
  constructor(message: string) {
    super("refused", message);
  }
}

/**
 * `path` with `..` and symlinks resolved, also when it does not exist yet: the real path of its deepest existing
 * folder with the rest appended. A dangling symlink is refused (where it leads is not known yet).
 */
export async function realPathOf(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" || abs === dirname(abs)) throw err;
    if (await lstat(abs).then(() => true, () => false)) throw new PathRefusedError(`${abs} is a dangling symlink`);
    return join(await realPathOf(dirname(abs)), basename(abs));
  }
}

/** True when `path` is `root` or lies below it (both real paths). */
export const isInside = (root: string, path: string): boolean => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/** The real path of `path` when `allowed` accepts it; else refused, naming the request field and where it must be. */
export async function confinePath(path: string, field: string, allowed: (real: string) => boolean, where: string): Promise<string> {
  const real = await realPathOf(path);
  if (!allowed(real)) throw new PathRefusedError(`${field} ${JSON.stringify(path)} (${real}) is not ${where}`);
  return real;
}

/**
 * The folders libvirt itself keeps images in on `libvirt`'s connection: the target paths of its file-system storage
 * pools (dir, fs, netfs; a logical or disk pool's path is a /dev folder) and the folders of the file disks of its
 * persistent domains. Unresolved; a pool whose XML cannot be read is left out.
 */
export async function libvirtImageFolders(libvirt: Libvirt): Promise<string[]> {
  const poolPaths = await libvirt.storagePoolPaths();
  const domains = await libvirt.listPersistentDomains();
  const diskFolders = (await Promise.all(domains.map((d) => libvirt.diskImages(d.name).catch(() => [])))).flat().map((d) => dirname(d.path));
  return [...new Set([...poolPaths.filter((p) => p.startsWith("/")), ...diskFolders])];
}

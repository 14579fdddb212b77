import { mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLogger } from "@vmbs/logger";
import type { ChainEvent } from "@vmbs/contracts";
import type { RotationDeps } from "../rotation/rotation-deps.js";

/** Test helper: what a virtnbdbackup chain folder looks like, written for real, with chosen mtimes. */
export interface FixtureChain {
  /** Checkpoint times (epoch ms), one per checkpoint, oldest first. Checkpoint 0 is the full backup. */
  points: number[];
  /** Write `checkpoints/*.xml` with `<creationTime>` (default true); false leaves only file mtimes. */
  xml?: boolean;
  /** Write `<domain>.cpt` (default true). */
  cpt?: boolean;
  /** A copy backup (`sda.copy.data`, no checkpoints) instead of a chain. */
  copy?: boolean;
}

async function put(dir: string, rel: string, body: string, mtimeMs: number): Promise<void> {
  const path = join(dir, rel);
  await writeFile(path, body);
  await utimes(path, mtimeMs / 1000, mtimeMs / 1000);
}

/** Writes a chain folder `<root>/<folder>` for `domain`, each file stamped with its checkpoint's time. */
export async function writeChain(root: string, folder: string, domain: string, c: FixtureChain): Promise<string> {
  const dir = join(root, folder);
  await mkdir(join(dir, "checkpoints"), { recursive: true });
  if (c.copy) {
    await put(dir, "sda.copy.data", "copy", c.points[0] ?? Date.now());
    await put(dir, `vmconfig.copy.xml`, "<domain/>", c.points[0] ?? Date.now());
    return dir;
  }
  const names = c.points.map((_, i) => `virtnbdbackup.${i}`);
  for (const [i, t] of c.points.entries()) {
    const cp = names[i]!;
    await put(dir, i === 0 ? "sda.full.data" : `sda.inc.${cp}.data`, `data ${i}`, t);
    await put(dir, `vmconfig.${cp}.xml`, "<domain/>", t);
    await put(dir, `sda.${cp}.qcow.json`, "{}", t);
    if (c.xml ?? true) {
      const xml = `<domaincheckpoint><name>${cp}</name><creationTime>${Math.floor(t / 1000)}</creationTime></domaincheckpoint>`;
      await put(dir, `checkpoints/${cp}.xml`, xml, t);
    }
  }
  if (c.cpt ?? true) await put(dir, `${domain}.cpt`, JSON.stringify(names), c.points.at(-1) ?? Date.now());
  return dir;
}

/** Deps with a captured publish callback (the real dep, not a NATS mock) and a silent logger. */
export function captureDeps(
  backupRoot: string,
  now: number,
  domainNames: readonly string[] = [],
  busyFolders: readonly string[] = [],
): { deps: RotationDeps; events: ChainEvent[] } {
  const events: ChainEvent[] = [];
  const deps: RotationDeps = {
    backupRoot,
    host: "hv1",
    domainNames: async () => domainNames,
    // The lease store's answer, reduced to what retention sees: busy or a release.
    lockFolder: async (name) => (busyFolders.includes(name) ? undefined : async () => undefined),
    publish: (e) => void events.push(e),
    logger: createLogger({ name: "test", level: "silent" }),
    timeZone: "UTC",
    now: () => now,
  };
  return { deps, events };
}

export const DAY = 86_400_000;

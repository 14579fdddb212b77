import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { nameToken, type InstantDisk } from "./instant-plan.js";

/*
 * The restore service's record of each instant VM, `$VMBS_STATE_DIR/restore/<host>/instant/<token>.json`: what it
 * made and how far it got, written before each step that makes something, so that after a restart the service can
 * serve it again, finish what a restart interrupted, or remove what a half-made start left.
 */

/**
 * `starting`: files and exports may exist, the domain may be defined but was never handed over;
 * `serving`: the domain runs (or ran) from the exports; `finishing`: the copy onto the final images began.
 */
export type InstantPhase = "starting" | "serving" | "finishing";

export interface InstantRecord {
  /** The instant domain. */
  name: string;
  /** The backed-up domain and the set and checkpoint served. */
  source: string;
  set: string;
  checkpoint: string;
  setDir: string;
  targetDir: string;
  workDir: string;
  /** The new domain's UUID, once its XML is made (a domain of that name with another UUID is not ours). */
  uuid?: string;
  /** Files the start made beside the disks: the UEFI variable store copy. */
  nvram?: string;
  disks: InstantDisk[];
  phase: InstantPhase;
  since: string;
  requestId?: string;
}

export interface InstantRecords {
  dir: string;
  get(name: string): Promise<InstantRecord | undefined>;
  save(record: InstantRecord): Promise<void>;
  remove(name: string): Promise<void>;
  /** Every record, and the files that could not be read as one. */
  list(): Promise<{ records: InstantRecord[]; unreadable: string[] }>;
}

export function instantRecordsDir(stateDir: string, host: string): string {
  return join(stateDir, "restore", host, "instant");
}

export function openInstantRecords(dir: string): InstantRecords {
  const file = (name: string): string => join(dir, `${nameToken(name)}.json`);
  const read = async (path: string): Promise<InstantRecord | undefined> => {
    const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    if (text === undefined) return undefined;
    const r = JSON.parse(text) as InstantRecord;
    if (typeof r.name !== "string" || !Array.isArray(r.disks) || !["starting", "serving", "finishing"].includes(r.phase)) throw new Error(`${path} is not an instant VM record`);
    return r;
  };
  return {
    dir,
    async get(name) {
      const r = await read(file(name));
      return r?.name === name ? r : undefined;
    },
    async save(record) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // Written aside and renamed: a crash leaves the old record or the new one, never half of one.
      const tmp = `${file(record.name)}.tmp`;
      await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, file(record.name));
    },
    async remove(name) {
      await rm(file(name), { force: true });
    },
    async list() {
      const names = await readdir(dir).catch(() => [] as string[]);
      const records: InstantRecord[] = [];
      const unreadable: string[] = [];
      for (const n of names.filter((f) => f.endsWith(".json"))) {
        const r = await read(join(dir, n)).catch(() => undefined);
        if (r) records.push(r);
        else unreadable.push(join(dir, n));
      }
      return { records, unreadable };
    },
  };
}

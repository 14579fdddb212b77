import { createHash, type Hash } from "node:crypto";
import { open, readdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/*
 * Hashing a backup's data files while the engine writes them. virtnbdbackup writes each data file front to back as
 * `<name>.partial` and renames it when done; a follower opened on the partial file reads what was appended (from
 * the page cache, on the other core) and keeps its descriptor across the rename, so the digest is ready when the
 * engine exits instead of costing a second read of everything afterwards (a third of a full backup's time).
 */

const PARTIAL = ".partial";
const CHUNK_BYTES = 4 * 1024 * 1024;
/** How often the folder is looked at for a new partial file, and a caught-up follower looks for more data. */
const pollMs = 50;

/** The digest of one finished data file, keyed by its final name (relative to the chain folder). */
export interface StreamedDigest {
  sha256: string;
  /** Bytes hashed: the digest stands for the file only when this equals its final size. */
  bytes: number;
}

/** Followers of the data files one engine run writes into a chain folder. */
export interface DataFileHasher {
  /** Call once the engine has exited: reads each followed file to its end and returns its digest. */
  finish(): Promise<Map<string, StreamedDigest>>;
  /** Gives up (a failed run): closes every file, returns nothing. */
  stop(): Promise<void>;
  /** Bytes read so far from every followed file: how much the engine has written (a progress figure, no I/O). */
  bytesSoFar(): number;
}

interface Follower {
  name: string;
  hash: Hash;
  bytes: number;
  done: Promise<void>;
}

/**
 * Starts following every top-level `*.data.partial` file that appears in `dir` (which may not exist yet). A file
 * written and renamed between two looks is simply not followed; the caller hashes what has no digest afterwards.
 */
export function followDataFiles(dir: string): DataFileHasher {
  const followers = new Map<string, Follower>();
  let ending = false;
  let stopped = false;
  // Ends every wait at once when the engine has exited: the digests are wanted now, not a poll later.
  const wake = new AbortController();
  const pause = (): Promise<void> => sleep(pollMs, undefined, { signal: wake.signal }).catch(() => undefined);
  const handles: FileHandle[] = [];

  const follow = (partialName: string): void => {
    const name = partialName.slice(0, -PARTIAL.length);
    const f: Follower = { name, hash: createHash("sha256"), bytes: 0, done: Promise.resolve() };
    f.done = (async () => {
      // Gone already (renamed before we got to it): no digest, the caller hashes the file afterwards.
      const fh = await open(join(dir, partialName), "r").catch(() => undefined);
      if (!fh) return;
      handles.push(fh);
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      for (;;) {
        if (stopped) return;
        const { bytesRead } = await fh.read(buffer, 0, CHUNK_BYTES, f.bytes);
        if (bytesRead > 0) {
          f.hash.update(buffer.subarray(0, bytesRead));
          f.bytes += bytesRead;
          continue;
        }
        // Caught up: once the engine has exited, nothing more will come.
        if (ending) return;
        await pause();
      }
    })().catch(() => {
      // A read that failed leaves a partial digest: drop it, the file is hashed afterwards instead.
      f.bytes = 0;
    });
    followers.set(partialName, f);
  };

  const look = async (): Promise<void> => {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) if (n.endsWith(`.data${PARTIAL}`) && !followers.has(n)) follow(n);
  };
  const watcher = (async () => {
    while (!ending && !stopped) {
      await look();
      await pause();
    }
  })();

  const closeAll = async () => {
    await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
  };

  return {
    bytesSoFar: () => [...followers.values()].reduce((sum, f) => sum + f.bytes, 0),
    async finish() {
      ending = true;
      wake.abort();
      await watcher;
      await Promise.all([...followers.values()].map((f) => f.done));
      await closeAll();
      const out = new Map<string, StreamedDigest>();
      for (const f of followers.values()) if (f.bytes > 0) out.set(f.name, { sha256: f.hash.digest("hex"), bytes: f.bytes });
      return out;
    },
    async stop() {
      stopped = true;
      ending = true;
      wake.abort();
      await watcher;
      await Promise.all([...followers.values()].map((f) => f.done));
      await closeAll();
    },
  };
}

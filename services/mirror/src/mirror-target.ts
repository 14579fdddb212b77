import { posix } from "node:path";

/** Where chains are mirrored: a folder on this machine (or a mounted share), or a folder on an ssh host. */
export type MirrorTarget =
  | { kind: "local"; root: string }
  | { kind: "ssh"; user: string; host: string; root: string }
  /** An rclone remote `name:path`: `remote` = `name:`, `root` = `path` ("" for the remote's top). */
  | { kind: "rclone"; remote: string; root: string };

/** One MIRROR_RCLONE_TARGETS entry, `name:` or `name:path`. */
export function parseRcloneTarget(value: string): MirrorTarget {
  const colon = value.indexOf(":");
  if (colon < 1) throw new RangeError(`not an rclone remote: ${JSON.stringify(value)}`);
  return { kind: "rclone", remote: value.slice(0, colon + 1), root: value.slice(colon + 1).replace(/\/+$/, "") };
}

/**
 * RSYNC_BACKUP_PATH as the seed reads it at run time: `user@host:/absolute` is remote, anything else a local
 * path (libs/config already refuses relative paths and `user@host:rel`).
 */
export function parseMirrorTarget(value: string): MirrorTarget {
  const m = /^([^@\s/]+)@([^:\s/]+):(\/.*)$/.exec(value);
  if (m) return { kind: "ssh", user: m[1]!, host: m[2]!, root: posix.normalize(m[3]!) };
  return { kind: "local", root: posix.normalize(value) };
}

/** The target as shown in events and logs. */
export function describeTarget(t: MirrorTarget): string {
  return t.kind === "ssh" ? `${t.user}@${t.host}:${t.root}` : t.kind === "rclone" ? `${t.remote}${t.root}` : t.root;
}


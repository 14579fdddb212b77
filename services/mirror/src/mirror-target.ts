import { homedir } from "node:os";
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

/** The ssh settings SFTP needs, read from SSH_OPTIONS as the seed's users write them. */
export interface SshSettings {
  port: number;
  identityFiles: string[];
  connectTimeoutMs: number;
  /** `-l user` / `-o User=`; the user of RSYNC_BACKUP_PATH wins. */
  user?: string;
}

/**
 * Reads `-p PORT`, `-i KEY`, `-l USER` and `-o Key=Value` / `-oKey=Value` / `-o Key Value` (Port, IdentityFile,
 * ConnectTimeout, User) from SSH_OPTIONS words. Everything else (`-q`, BatchMode, StrictHostKeyChecking, …) only
 * matters to the ssh binary rsync runs, and is passed to it unchanged.
 */
export function parseSshOptions(words: readonly string[]): SshSettings {
  const s: SshSettings = { port: 22, identityFiles: [], connectTimeoutMs: 10_000 };
  const setOption = (key: string, value: string): void => {
    switch (key.toLowerCase()) {
      case "port":
        s.port = portOf(value);
        break;
      case "identityfile":
        s.identityFiles.push(expandHome(value));
        break;
      case "connecttimeout":
        s.connectTimeoutMs = Math.max(1, Number.parseInt(value, 10) || 10) * 1000;
        break;
      case "user":
        s.user = value;
        break;
    }
  };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const flag = /^-([pilo])(.*)$/.exec(w);
    if (!flag) continue;
    const letter = flag[1]!;
    const value = flag[2] !== "" ? flag[2]! : (words[++i] ?? "");
    if (letter === "p") s.port = portOf(value);
    else if (letter === "i") s.identityFiles.push(expandHome(value));
    else if (letter === "l") s.user = value;
    else {
      const eq = value.indexOf("=");
      if (eq > 0) setOption(value.slice(0, eq).trim(), value.slice(eq + 1).trim());
      else setOption(value.trim(), words[++i] ?? "");
    }
  }
  return s;
}

function portOf(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`SSH_OPTIONS: invalid port ${JSON.stringify(value)}`);
  return port;
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? posix.join(homedir(), path.slice(1)) : path;
}

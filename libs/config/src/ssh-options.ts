import { homedir } from "node:os";
import { posix } from "node:path";

/*
 * SSH_OPTIONS as the seed's users write them, read once for every ssh connection the services make: the SFTP
 * client's settings, and the host key policy that the ssh binary (rsync's, a replication's) gets as well.
 */

/**
 * How unknown host keys are treated. There is no "accept anything": a key that differs from a recorded one is
 * refused in both modes.
 */
export type HostKeyMode = "strict" | "accept-new";

/** The known_hosts policy, shared by the SFTP check and the ssh that rsync runs (see sshOptionsWithHostKeyPolicy). */
export interface HostKeyPolicy {
  mode: HostKeyMode;
  /** UserKnownHostsFile: read, and the first one receives keys accepted on first contact. Empty = `none`. */
  userFiles: string[];
  /** GlobalKnownHostsFile: read only. */
  globalFiles: string[];
  /** HashKnownHosts: record new entries as `|1|salt|hash` instead of the host name. */
  hashNew: boolean;
}

/** The ssh settings SFTP needs, read from SSH_OPTIONS as the seed's users write them. */
export interface SshSettings {
  port: number;
  identityFiles: string[];
  connectTimeoutMs: number;
  /** `-l user` / `-o User=`; the user of RSYNC_BACKUP_PATH wins. */
  user?: string;
  hostKeys: HostKeyPolicy;
}

/** One option in SSH_OPTIONS: its lower-case name (`-p` is `port`, `-i` `identityfile`, `-l` `user`), value and words. */
interface SshOption {
  key: string;
  value: string;
  /** Index of its first word and of the word after it. */
  from: number;
  to: number;
}

function* sshOptionsIn(words: readonly string[]): Generator<SshOption> {
  const letters: Record<string, string> = { p: "port", i: "identityfile", l: "user" };
  for (let i = 0; i < words.length; i++) {
    const from = i;
    const flag = /^-([pilo])(.*)$/.exec(words[i]!);
    if (!flag) continue;
    const value = flag[2] !== "" ? flag[2]! : (words[++i] ?? "");
    if (flag[1] !== "o") {
      yield { key: letters[flag[1]!]!, value, from, to: i + 1 };
      continue;
    }
    // ssh takes `Key=Value` and `Key Value` in one word; the seed's users also wrote `-o Key Value` as two.
    const kv = /^\s*([^\s=]+)\s*(?:=|\s)\s*(.*)$/.exec(value);
    if (kv) yield { key: kv[1]!.toLowerCase(), value: kv[2]!.trim(), from, to: i + 1 };
    else yield { key: value.trim().toLowerCase(), value: words[++i] ?? "", from, to: i + 1 };
  }
}

/**
 * Reads `-p PORT`, `-i KEY`, `-l USER` and `-o Key=Value` / `-oKey=Value` / `-o Key Value` (Port, IdentityFile,
 * ConnectTimeout, User and the known_hosts options) from SSH_OPTIONS words. Like ssh, the first value of an
 * option wins (IdentityFile adds up). Everything else (`-q`, BatchMode, …) only matters to the ssh binary rsync
 * runs, and is passed to it unchanged.
 */
export function parseSshOptions(words: readonly string[]): SshSettings {
  const first = new Map<string, string>();
  const identityFiles: string[] = [];
  for (const { key, value } of sshOptionsIn(words)) {
    if (key === "identityfile") identityFiles.push(expandHome(value));
    else if (!first.has(key)) first.set(key, value);
  }
  const hostKeys: HostKeyPolicy = {
    mode: hostKeyMode(first.get("stricthostkeychecking")),
    userFiles: knownHostsFiles(first.get("userknownhostsfile") ?? "~/.ssh/known_hosts ~/.ssh/known_hosts2"),
    globalFiles: knownHostsFiles(first.get("globalknownhostsfile") ?? "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"),
    hashNew: /^(yes|true)$/i.test(first.get("hashknownhosts") ?? ""),
  };
  if (hostKeys.mode === "accept-new" && hostKeys.userFiles.length === 0)
    throw new RangeError("SSH_OPTIONS: StrictHostKeyChecking=accept-new (or no) needs a UserKnownHostsFile to remember keys in; with none or /dev/null every host key would be accepted");
  const port = first.get("port");
  const timeout = first.get("connecttimeout");
  const user = first.get("user");
  return {
    port: port === undefined ? 22 : portOf(port),
    identityFiles,
    connectTimeoutMs: timeout === undefined ? 10_000 : Math.max(1, Number.parseInt(timeout, 10) || 10) * 1000,
    ...(user !== undefined ? { user } : {}),
    hostKeys,
  };
}

/**
 * StrictHostKeyChecking as this tool applies it. yes and ask (nobody can answer a prompt here) refuse unknown
 * hosts; accept-new records them; the seed's no/off is taken as accept-new, because ssh's "no" would also connect
 * to a host whose key CHANGED. Unset is ssh's default, ask.
 */
function hostKeyMode(value = "ask"): HostKeyMode {
  switch (value.toLowerCase()) {
    case "yes":
    case "true":
    case "ask":
      return "strict";
    case "accept-new":
    case "no":
    case "off":
    case "false":
      return "accept-new";
    default:
      throw new RangeError(`SSH_OPTIONS: invalid StrictHostKeyChecking ${JSON.stringify(value)}`);
  }
}

/** A UserKnownHostsFile / GlobalKnownHostsFile value: space-separated paths; `none` and /dev/null hold nothing. */
function knownHostsFiles(value: string): string[] {
  if (value.includes("%")) throw new RangeError(`SSH_OPTIONS: %-tokens in known_hosts paths are not supported: ${JSON.stringify(value)}`);
  return value.split(/\s+/).filter((f) => f !== "" && f !== "none" && f !== "/dev/null").map(expandHome);
}

/**
 * SSH_OPTIONS for every ssh we run (rsync's, a replication's), with the known_hosts options replaced by the policy
 * the mirror's SFTP check applies (absolute paths, no/off as accept-new), so all accept and refuse the same keys.
 */
export function sshOptionsWithHostKeyPolicy(words: readonly string[]): string[] {
  const { hostKeys } = parseSshOptions(words);
  const replaced = new Set(["stricthostkeychecking", "userknownhostsfile", "globalknownhostsfile"]);
  const drop = new Set<number>();
  for (const o of sshOptionsIn(words)) if (replaced.has(o.key)) for (let i = o.from; i < o.to; i++) drop.add(i);
  const files = (list: string[]) => (list.length > 0 ? list.join(" ") : "none");
  return [
    "-o",
    `StrictHostKeyChecking=${hostKeys.mode === "strict" ? "yes" : "accept-new"}`,
    "-o",
    `UserKnownHostsFile=${files(hostKeys.userFiles)}`,
    "-o",
    `GlobalKnownHostsFile=${files(hostKeys.globalFiles)}`,
    ...words.filter((_, i) => !drop.has(i)),
  ];
}

function portOf(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`SSH_OPTIONS: invalid port ${JSON.stringify(value)}`);
  return port;
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? posix.join(homedir(), path.slice(1)) : path;
}

import { createHash, createHmac, randomBytes } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { ServerHostKeyAlgorithm } from "ssh2";
import type { HostKeyPolicy } from "@vmbs/config";
import { VmbsError } from "@vmbs/contracts";

/** One usable known_hosts line. */
export interface KnownHostEntry {
  marker?: "revoked" | "cert-authority";
  /** The host field as written (a pattern list or `|1|salt|hash`). */
  hosts: string;
  keyType: string;
  /** The public key blob, as the server sends it. */
  key: Buffer;
  file: string;
  line: number;
}

/** The server's host key was refused (changed, unknown under strict checking, revoked, or not recordable). */
export class HostKeyError extends VmbsError {
  constructor(message: string, options?: ErrorOptions) {
    super("refused", message, options);
  }
}

/** The name ssh looks up: `host` on port 22, `[host]:port` otherwise (lower case, as ssh does). */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** OpenSSH's fingerprint: `SHA256:` + unpadded base64 of the key blob's SHA-256. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** The algorithm name at the start of a key blob (an SSH string), or undefined if the blob is malformed. */
function blobKeyType(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const len = key.readUInt32BE(0);
  return len > 0 && len <= 64 && 4 + len <= key.length ? key.subarray(4, 4 + len).toString("latin1") : undefined;
}

/** The usable lines of a known_hosts file; comments, blank and malformed lines are skipped, as ssh does. */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const words = raw.trim().split(/\s+/);
    if (words[0] === "" || words[0]!.startsWith("#")) return;
    let marker: KnownHostEntry["marker"];
    if (words[0]!.startsWith("@")) {
      const m = words.shift()!.slice(1);
      if (m !== "revoked" && m !== "cert-authority") return;
      marker = m;
    }
    const [hosts, keyType, b64] = words;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return;
    const key = Buffer.from(b64, "base64");
    if (blobKeyType(key) !== keyType) return;
    entries.push({ ...(marker ? { marker } : {}), hosts, keyType, key, file, line: i + 1 });
  });
  return entries;
}

/** Whether an entry's host field names `name`: a hashed entry, or patterns with `*`, `?` and `!` negation. */
export function hostsFieldMatches(hosts: string, name: string): boolean {
  const hashed = /^\|1\|([^|]+)\|([^|]+)$/.exec(hosts);
  if (hashed) return createHmac("sha1", Buffer.from(hashed[1]!, "base64")).update(name).digest("base64") === hashed[2];
  let matched = false;
  for (const pattern of hosts.toLowerCase().split(",")) {
    const negated = pattern.startsWith("!");
    if (!globMatches(negated ? pattern.slice(1) : pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatches(pattern: string, name: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(name);
}

/** The entries of every readable known_hosts file of the policy (a missing file is empty, as for ssh). */
export async function loadKnownHosts(policy: HostKeyPolicy): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const file of [...policy.userFiles, ...policy.globalFiles]) {
    const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return "";
      throw new HostKeyError(`cannot read known_hosts file ${file}: ${err.message}`, { cause: err });
    });
    all.push(...parseKnownHosts(text, file));
  }
  return all;
}

export type HostKeyVerdict =
  | { status: "known"; entry: KnownHostEntry }
  | { status: "unknown" }
  | { status: "changed"; recorded: KnownHostEntry[] }
  | { status: "revoked"; entry: KnownHostEntry };

/**
 * ssh's decision for a presented key. Stricter than ssh in one case: a key of a type not recorded for a host that
 * has other keys counts as changed, not new (ssh2 is told to prefer the recorded types, see preferredHostKeyAlgorithms).
 */
export function judgeHostKey(entries: readonly KnownHostEntry[], name: string, key: Buffer): HostKeyVerdict {
  const forHost = entries.filter((e) => e.marker !== "cert-authority" && hostsFieldMatches(e.hosts, name));
  const revoked = forHost.find((e) => e.marker === "revoked" && e.key.equals(key));
  if (revoked) return { status: "revoked", entry: revoked };
  const recorded = forHost.filter((e) => e.marker === undefined);
  const same = recorded.find((e) => e.key.equals(key));
  if (same) return { status: "known", entry: same };
  return recorded.length > 0 ? { status: "changed", recorded } : { status: "unknown" };
}

/** ssh2 host key algorithms that yield a key of this type (RSA keys sign with three). */
const algorithmsOfKeyType: Record<string, ServerHostKeyAlgorithm[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
  "ssh-dss": ["ssh-dss"],
};

/**
 * The host key algorithms to ask for first, as ssh does: those of the key types already recorded for the host, so
 * a server with several host keys presents one we can check instead of one we would refuse as changed.
 */
export function preferredHostKeyAlgorithms(entries: readonly KnownHostEntry[], name: string): ServerHostKeyAlgorithm[] {
  const types = new Set(entries.filter((e) => e.marker === undefined && hostsFieldMatches(e.hosts, name)).map((e) => e.keyType));
  return [...types].flatMap((t) => algorithmsOfKeyType[t] ?? []);
}

/** The known_hosts line ssh would write for `name` (hashed with HashKnownHosts). */
export function knownHostsLine(name: string, key: Buffer, hash: boolean): string {
  let hosts = name;
  if (hash) {
    const salt = randomBytes(20);
    hosts = `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
  }
  return `${hosts} ${blobKeyType(key)} ${key.toString("base64")}\n`;
}

/** Serialises check-and-record per known_hosts file within this process, so concurrent first contacts agree. */
const recording = new Map<string, Promise<unknown>>();

function describeEntry(e: KnownHostEntry): string {
  return `${e.keyType} ${fingerprint(e.key)} (${e.file}:${e.line})`;
}

/**
 * Accepts `key` for `host:port` under `policy` or throws a HostKeyError naming the host and fingerprints. Under
 * accept-new an unknown key is first appended to the first user known_hosts file; if that fails the key is
 * refused, since a key that is not remembered would be accepted again from anyone.
 */
export async function verifyHostKey(policy: HostKeyPolicy, host: string, port: number, key: Buffer): Promise<void> {
  const recordFile = policy.mode === "accept-new" ? policy.userFiles[0] : undefined;
  const lockKey = recordFile ?? "";
  const previous = recording.get(lockKey) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => decide(policy, host, port, key, recordFile));
  recording.set(lockKey, run);
  try {
    await run;
  } finally {
    if (recording.get(lockKey) === run) recording.delete(lockKey);
  }
}

async function decide(policy: HostKeyPolicy, host: string, port: number, key: Buffer, recordFile: string | undefined): Promise<void> {
  const name = knownHostName(host, port);
  const offered = `${blobKeyType(key) ?? "unknown-type"} ${fingerprint(key)}`;
  const verdict = judgeHostKey(await loadKnownHosts(policy), name, key);
  switch (verdict.status) {
    case "known":
      return;
    case "revoked":
      throw new HostKeyError(`host key of ${name} is REVOKED in ${verdict.entry.file}:${verdict.entry.line}: ${offered}; refusing to connect`);
    case "changed":
      throw new HostKeyError(
        `host key of ${name} has CHANGED: the server offered ${offered}, known_hosts has ${verdict.recorded.map(describeEntry).join(", ")}. ` +
          `Refusing to connect: this may be a man-in-the-middle. If the server was re-keyed, remove the old entry ` +
          `(ssh-keygen -R '${name}' -f ${verdict.recorded[0]!.file}) and add the new key.`,
      );
    case "unknown":
      if (!recordFile) {
        const files = [...policy.userFiles, ...policy.globalFiles].join(", ") || "none";
        throw new HostKeyError(`host key of ${name} (${offered}) is not in known_hosts (${files}), and StrictHostKeyChecking (yes, ask or unset) refuses unknown hosts: add the key, or set StrictHostKeyChecking=accept-new`);
      }
      try {
        await mkdir(dirname(recordFile), { recursive: true, mode: 0o700 });
        const text = await readFile(recordFile, "utf8").catch(() => "");
        await appendFile(recordFile, `${text === "" || text.endsWith("\n") ? "" : "\n"}${knownHostsLine(name, key, policy.hashNew)}`, { mode: 0o600 });
      } catch (err) {
        throw new HostKeyError(`host key of ${name} (${offered}) could not be recorded in ${recordFile}: ${(err as Error).message}; refusing to connect`, { cause: err });
      }
  }
}

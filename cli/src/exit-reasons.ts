import { getuid } from "node:process";
import { BackupRootMarkerError } from "@vmbs/chain";
import { AgentPresenceBusyError, BusConnectError, describeHolder, StreamReplicasError, type LeaseLostError, type PresenceRecord } from "@vmbs/bus";
import { BackupRootError, type BackupRootProblem } from "@vmbs/backup-agent";
import { LocalRedisServerError, RedisUnavailableError } from "@vmbs/notifier";
import { PolicyFileError, type ConfigError } from "@vmbs/config";
import { VmbsError, notifyUrlLabel } from "@vmbs/contracts";
import { redactUrl } from "@vmbs/logger";
import { BusCredentialsError } from "./bus-auth.js";

/*
 * The ONE place that turns why a service refuses to start (or had to stop) into the line a person reads on
 * stderr and the exit status a supervisor sees. Statuses follow sysexits.h, so "fix the setup" (78, 73) is
 * told apart from "try again later" (69, 75) and from a bug (1).
 */

export const exitStatus = {
  /** EX_CONFIG: an environment variable is invalid, LOGFILE_PATH cannot be written, a stream has other replicas (not 0, so supervisors do not restart in a loop). */
  config: 78,
  /** EX_CANTCREAT: LOCAL_BACKUP_PATH is missing, not a writable directory, refused, or its root marker is corrupt. */
  backupPath: 73,
  /** EX_UNAVAILABLE: NATS_URL or REDIS_URL unreachable, the local nats-server could not start, or it died while running. */
  natsUnavailable: 69,
  /** EX_TEMPFAIL: another agent serves this HOST_ID (at start-up, or it took the host id over while running). */
  anotherAgent: 75,
  /** Anything else: a bug or an unexpected environment; the JSON log has the stack. */
  other: 1,
} as const;

/** Settings whose value is a secret: never shown in a message or log. */
const secretSettings = new Set(["NATS_PASSWORD", "NATS_TOKEN"]);

/** A setting's value as it may be shown: secrets masked, credentials in URLs hidden. */
function displayValue(setting: string, value: string): string {
  // Notification URLs carry tokens in their paths and queries too: only scheme and host are shown.
  if (setting === "NOTIFY_URLS") return value.trim().split(/\s+/).filter(Boolean).map(notifyUrlLabel).join(" ");
  return secretSettings.has(setting) && value !== "" ? "***" : redactUrl(value);
}

/** One stderr line per invalid variable: what to fix, and the value given without its secrets. */
export function configErrorLines(err: ConfigError, env: Record<string, string | undefined>): string[] {
  return err.problems.map((p) => `vmbs: invalid configuration: ${p.setting}: ${p.expected} (got ${JSON.stringify(displayValue(p.setting, env[p.setting] ?? ""))})`);
}

/** LOGFILE_PATH could not be opened. */
export class LogFileError extends VmbsError {
  constructor(readonly path: string, options: ErrorOptions) {
    super("misconfigured", `LOGFILE_PATH ${path} is not writable`, options);
  }
}

/** `vmbs mirror-service` without RSYNC_BACKUP_PATH or MIRROR_RCLONE_TARGETS: there is nothing to mirror to. */
export class MirrorNotConfiguredError extends VmbsError {
  constructor() {
    super("misconfigured", "neither RSYNC_BACKUP_PATH nor MIRROR_RCLONE_TARGETS is set");
  }
}

/** `vmbs start` could not start its own nats-server (port taken, binary missing, store dir unusable). */
export class LocalNatsServerError extends VmbsError {
  constructor(readonly port: number, options: ErrorOptions) {
    super("unavailable", `could not start the local nats-server on 127.0.0.1:${port}`, options);
  }
}

/** The notifier's settings do not fit together (NOTIFY_URLS without REDIS_URL, …): exit 78. */
export class NotifierSetupError extends VmbsError {
  constructor(message: string) {
    super("misconfigured", message);
  }
}

/** A server that `vmbs start` runs itself exited while the services were running. */
abstract class LocalServerDiedError extends VmbsError {
  constructor(server: string, readonly pid: number, readonly exitCode: number | null, readonly signal: string | null) {
    super("unavailable", `the local ${server} (pid ${pid}) exited (${signal ? `signal ${signal}` : `code ${exitCode}`})`);
  }
}

/** The nats-server of `vmbs start` exited. */
export class LocalNatsServerDiedError extends LocalServerDiedError {
  constructor(pid: number, exitCode: number | null, signal: string | null) {
    super("nats-server", pid, exitCode, signal);
  }
}

/** The redis-server that `vmbs start` runs for the notifier exited. */
export class LocalRedisServerDiedError extends LocalServerDiedError {
  constructor(pid: number, exitCode: number | null, signal: string | null) {
    super("redis-server", pid, exitCode, signal);
  }
}

/** While running, another agent took this HOST_ID's presence key. */
export class PresenceLostError extends VmbsError {
  constructor(readonly host: string, readonly holder: PresenceRecord | undefined, options: { cause: LeaseLostError }) {
    super("busy", `another agent took over HOST_ID ${host}`, options);
  }
}

const hostIdFix = "set HOST_ID to a value unique to each machine (Unraid's default hostname is the same on every box)";

/** What to do about each refused backup path. */
const backupPathFixes: Record<BackupRootProblem, (path: string) => string> = {
  missing: (p) => `create it (mkdir -p ${p}) or point LOCAL_BACKUP_PATH at your backup share`,
  "not-a-directory": () => "point LOCAL_BACKUP_PATH at a folder for the backups",
  unwritable: () => `give this user (uid ${getuid?.() ?? "?"}) read and write access, or mount the share read-write`,
  "system-folder": () => "use a folder of its own for the backups, e.g. /srv/backups or /mnt/user/backups",
  "world-writable": (p) => `make it private (chmod o-w ${p}) or use a folder of its own`,
};

/** One line: causes such as nats-server's stderr tail may span several. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function causeOf(err: Error): string {
  return err.cause instanceof Error ? oneLine(err.cause.message) : "";
}

/** The stderr line (without the trailing newline) and the exit status for why a service stopped. */
export function describeExit(err: unknown): { line: string; status: number } {
  if (err instanceof BackupRootError) return { line: `vmbs: ${err.message} — ${backupPathFixes[err.problem](err.path)}`, status: exitStatus.backupPath };
  if (err instanceof BusConnectError)
    return {
      line: `vmbs: NATS_URL ${redactUrl(err.url)} is not reachable (${causeOf(err)}) — start nats-server there, correct NATS_URL, or unset it so that vmbs start runs its own`,
      status: exitStatus.natsUnavailable,
    };
  if (err instanceof LocalNatsServerError)
    return {
      line: `vmbs: could not start the local nats-server on 127.0.0.1:${err.port} (${causeOf(err)}) — set VMBS_LOCAL_NATS_PORT to a free port (is another vmbs start running?), or set NATS_URL to an existing server`,
      status: exitStatus.natsUnavailable,
    };
  if (err instanceof LocalNatsServerDiedError)
    return {
      line: `vmbs: ${err.message}; the services were stopped — start vmbs again (a supervisor such as systemd or Docker's restart policy does it)`,
      status: exitStatus.natsUnavailable,
    };
  if (err instanceof AgentPresenceBusyError)
    return {
      line: `vmbs: HOST_ID ${err.host} is already served by another agent (${describeHolder(err.holder)}) — ${hostIdFix}, or stop that agent`,
      status: exitStatus.anotherAgent,
    };
  if (err instanceof PresenceLostError)
    return {
      line: `vmbs: another agent took over HOST_ID ${err.host} (${describeHolder(err.holder)}); this agent stopped taking commands — ${hostIdFix}`,
      status: exitStatus.anotherAgent,
    };
  if (err instanceof BackupRootMarkerError) return { line: `vmbs: LOCAL_BACKUP_PATH marker ${oneLine(err.message)}`, status: exitStatus.backupPath };
  if (err instanceof BusCredentialsError) return { line: `vmbs: ${oneLine(err.message)}`, status: exitStatus.config };
  if (err instanceof StreamReplicasError) return { line: `vmbs: ${err.message}`, status: exitStatus.config };
  if (err instanceof NotifierSetupError) return { line: `vmbs: ${err.message}`, status: exitStatus.config };
  if (err instanceof PolicyFileError) return { line: `vmbs: VMBS_POLICY_FILE ${oneLine(err.message)} — fix the file or unset VMBS_POLICY_FILE`, status: exitStatus.config };
  if (err instanceof RedisUnavailableError)
    return { line: `vmbs: ${redactUrl(err.message)} (${causeOf(err)}) — start redis-server there or correct REDIS_URL`, status: exitStatus.natsUnavailable };
  if (err instanceof LocalRedisServerError)
    return { line: `vmbs: ${err.message} (${causeOf(err)}) — install redis-server, or set REDIS_URL to an existing Redis`, status: exitStatus.natsUnavailable };
  if (err instanceof LocalRedisServerDiedError)
    return { line: `vmbs: ${err.message}; the services were stopped — start vmbs again (queued alerts are kept in its append-only file)`, status: exitStatus.natsUnavailable };
  if (err instanceof MirrorNotConfiguredError)
    return {
      line: "vmbs: RSYNC_BACKUP_PATH is not set — set it to user@host:/absolute/path or a mounted folder (or MIRROR_RCLONE_TARGETS to rclone remotes) to run the mirror",
      status: exitStatus.config,
    };
  if (err instanceof LogFileError)
    return { line: `vmbs: LOGFILE_PATH ${err.path} is not writable (${causeOf(err)}) — create its folder or point LOGFILE_PATH elsewhere`, status: exitStatus.config };
  const message = err instanceof Error ? err.message : String(err);
  return { line: `vmbs: start-up failed: ${oneLine(message)} (details in the log)`, status: exitStatus.other };
}

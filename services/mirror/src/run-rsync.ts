import { execa } from "execa";
import { rsyncRemoteShell, sshOptionsWithHostKeyPolicy } from "@vmbs/config";
import type { MirrorTarget } from "./mirror-target.js";
import { VmbsError } from "@vmbs/contracts";

/** rsync failed (exit code, or no answer within the timeout). `reason` is one line a person can act on. */
export class RsyncError extends VmbsError {
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super("failed", reason, options);
  }
}

export interface RsyncPlan {
  args: string[];
}

/** Seconds without any data before rsync itself gives up (its `--timeout`), unless RSYNC_ARGS sets one. */
const IO_TIMEOUT_S = 300;

/**
 * The rsync argument array for one domain: `RSYNC_ARGS --stats [-s -e "ssh SSH_OPTIONS"] <local>/<domain>/
 * <target>/<domain>/`, SSH_OPTIONS carrying the SFTP check's known_hosts policy (sshOptionsWithHostKeyPolicy). `-s`
 * (--protect-args / --secluded-args) sends the remote path as data, so a domain named `$(reboot)` or `a b` is a
 * file name on the other side, never words for its shell.
 */
export function rsyncArgs(o: { rsyncArgs: readonly string[]; sshOptions: readonly string[]; source: string; target: MirrorTarget; domain: string }): string[] {
  const args = [...o.rsyncArgs, "--stats"];
  if (!o.rsyncArgs.some((a) => a.startsWith("--timeout"))) args.push(`--timeout=${IO_TIMEOUT_S}`);
  const destination = `${o.target.root.replace(/\/+$/, "")}/${o.domain}/`;
  if (o.target.kind === "ssh") {
    args.push("-s", "-e", rsyncRemoteShell(sshOptionsWithHostKeyPolicy(o.sshOptions)), `${o.source}/`, `${o.target.user}@${o.target.host}:${destination}`);
  } else {
    args.push(`${o.source}/`, destination);
  }
  return args;
}

/** Bytes from one `--stats` line, e.g. `Total bytes sent: 1,234,567` (rsync 3.1+ groups digits). */
export function statsBytes(output: string, label: string): number | undefined {
  const m = new RegExp(`^${label}: ([\\d,.]+)`, "m").exec(output);
  return m ? Number(m[1]!.replace(/[,.]/g, "")) : undefined;
}

export interface RsyncResult {
  /** rsync's "Total bytes sent". */
  bytesSent: number;
  /** rsync's "Literal data": file data that was not already on the other side. */
  literalBytes: number;
}

export async function runRsync(args: string[], o: { timeoutMs: number; signal?: AbortSignal }): Promise<RsyncResult> {
  const r = await execa("rsync", args, { timeout: o.timeoutMs, cancelSignal: o.signal, reject: false, stdin: "ignore", all: true });
  if (r.exitCode !== 0 || r.failed) {
    const tail = (r.stderr || r.stdout || "").trim().split("\n").slice(-3).join(" | ");
    const why = r.timedOut ? `no result within ${Math.round(o.timeoutMs / 1000)} s` : r.isCanceled ? "cancelled" : `exit code ${r.exitCode ?? "none"}`;
    throw new RsyncError(`rsync failed (${why}): ${tail || r.shortMessage}`);
  }
  return { bytesSent: statsBytes(r.stdout, "Total bytes sent") ?? 0, literalBytes: statsBytes(r.stdout, "Literal data") ?? 0 };
}

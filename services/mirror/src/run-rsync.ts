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
 * The rsync argument array for one domain: `RSYNC_ARGS --stats --info=progress2 [-s -e "ssh SSH_OPTIONS"] <local>/<domain>/
 * <target>/<domain>/`, SSH_OPTIONS carrying the SFTP check's known_hosts policy (sshOptionsWithHostKeyPolicy). `-s`
 * (--protect-args / --secluded-args) sends the remote path as data, so a domain named `$(reboot)` or `a b` is a
 * file name on the other side, never words for its shell.
 */
export function rsyncArgs(o: { rsyncArgs: readonly string[]; sshOptions: readonly string[]; source: string; target: MirrorTarget; domain: string }): string[] {
  // progress2: one running count of the whole transfer (the progress messages), instead of a line per file.
  const args = [...o.rsyncArgs, "--stats", "--info=progress2"];
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

/**
 * The bytes done of one `--info=progress2` line, e.g. `     19,562,496  55%   16.78MB/s    0:00:00 (xfr#1, to-chk=1/3)`
 * (rsync 3.1+ groups digits with the locale's separator); undefined for any other line.
 */
export function progress2Bytes(line: string): number | undefined {
  const m = /^\s*(\d[\d,.']*)\s+\d+%\s+\S+\/s\s+\d+:\d{2}:\d{2}/.exec(line);
  return m ? Number(m[1]!.replace(/[,.']/g, "")) : undefined;
}

/** Lines of output other than progress kept for the stats and the error message: the stats are at the end. */
const keptLines = 200;

/**
 * Runs rsync; `onBytes` gets each progress2 count as it comes. Its stdout is read as a stream and only the last
 * lines that are not progress are kept (a 12 h transfer prints progress all along).
 */
export async function runRsync(args: string[], o: { timeoutMs: number; signal?: AbortSignal; onBytes?: (bytesDone: number) => void }): Promise<RsyncResult> {
  const p = execa("rsync", args, { timeout: o.timeoutMs, cancelSignal: o.signal, reject: false, stdin: "ignore", buffer: { stdout: false } });
  const lines: string[] = [];
  let partial = "";
  p.stdout.setEncoding("utf8");
  p.stdout.on("data", (chunk: string) => {
    // progress2 rewrites its line with \r; every other line ends with \n.
    const parts = (partial + chunk).split(/[\r\n]/);
    partial = parts.pop()!;
    for (const line of parts) {
      const bytes = progress2Bytes(line);
      if (bytes !== undefined) o.onBytes?.(bytes);
      else if (line.trim() !== "") {
        lines.push(line);
        if (lines.length > keptLines) lines.shift();
      }
    }
  });
  const r = await p;
  if (partial.trim() !== "" && progress2Bytes(partial) === undefined) lines.push(partial);
  const stdout = lines.join("\n");
  if (r.exitCode !== 0 || r.failed) {
    const tail = (r.stderr || stdout || "").trim().split("\n").slice(-3).join(" | ");
    const why = r.timedOut ? `no result within ${Math.round(o.timeoutMs / 1000)} s` : r.isCanceled ? "cancelled" : `exit code ${r.exitCode ?? "none"}`;
    throw new RsyncError(`rsync failed (${why}): ${tail || r.shortMessage}`);
  }
  return { bytesSent: statsBytes(stdout, "Total bytes sent") ?? 0, literalBytes: statsBytes(stdout, "Literal data") ?? 0 };
}

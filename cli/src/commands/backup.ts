import { backupLevels, subjects, type BackupLevel } from "@vmbs/contracts";
import { runHostCommand } from "../host-command.js";
import { connectAsOperator } from "../operator-client.js";

export interface BackupCommandOptions {
  /** One domain; undefined with `all`: every scheduled domain of the host. */
  domain?: string;
  all: boolean;
  host?: string;
  level: string;
  timeoutSec: number;
  json: boolean;
}

/**
 * `vmbs backup`: publishes one backup command (one domain, or with --all every scheduled one) and prints the
 * events it causes (its backups, and the rotation and retention around them) until the agent is done.
 * Exit 0 = every backup completed, 1 = one failed or the wait timed out, 69 = no live agent.
 */
export async function backupCommand(o: BackupCommandOptions): Promise<number> {
  if (!backupLevels.includes(o.level as BackupLevel)) {
    process.stderr.write(`--level must be one of ${backupLevels.join(", ")}\n`);
    return 2;
  }
  const client = await connectAsOperator("backup", o.host);
  if (typeof client === "number") return client;
  const { host, nc } = client;
  return runHostCommand({
    command: "backup",
    nc,
    host,
    subject: subjects.cmd.backup(host),
    payload: { ...(o.all ? {} : { domain: o.domain }), level: o.level },
    eventSubjects: [subjects.evt.backupAll(host), subjects.evt.chainAll(host)],
    progressSubject: subjects.progress.backup(host),
    takenBy: "agent",
    timeoutSec: o.timeoutSec,
    json: o.json,
  });
}

import { subjects } from "@vmbs/contracts";
import { runHostCommand } from "../host-command.js";
import { exitStatus } from "../exit-reasons.js";
import { connectAsOperator } from "../operator-client.js";
import { restoreServiceServes } from "../restore-service-presence.js";

export interface DrillCommandOptions {
  /** One domain's chains; undefined: every chain of the host's backup root. */
  domain?: string;
  host?: string;
  timeoutSec: number;
  json: boolean;
}

/**
 * `vmbs drill`: publishes `vmbs.cmd.drill.<host>` (taken by the host's restore service) and prints the drill's
 * events until it completed or failed. A host whose restore service does not answer is told at once and nothing is
 * sent. Exit 0 = every chain restores, 1 = a fault or the wait timed out, 69 = no restore service.
 */
export async function drillCommand(o: DrillCommandOptions): Promise<number> {
  const client = await connectAsOperator("drill", o.host);
  if (typeof client === "number") return client;
  const { host, nc } = client;
  const served = await restoreServiceServes(nc, host).catch((err: unknown) => err as Error);
  if (served !== true) {
    await nc.close();
    if (served instanceof Error) return (process.stderr.write(`vmbs drill: ${served.message}\n`), 1);
    process.stderr.write(`vmbs drill: no restore service of host ${host} answers (NATS micro service vmbs-restore); nothing was sent — start vmbs start (or vmbs restore-service) there, or check --host\n`);
    return exitStatus.natsUnavailable;
  }
  return runHostCommand({
    command: "drill",
    nc,
    host,
    subject: subjects.cmd.drill(host),
    payload: o.domain !== undefined ? { domain: o.domain } : {},
    eventSubjects: [subjects.evt.serviceAll("drill", host)],
    takenBy: "drill",
    timeoutSec: o.timeoutSec,
    json: o.json,
  });
}

import { subjects } from "@vmbs/contracts";
import { runHostCommand } from "../host-command.js";
import { connectAsOperator } from "../operator-client.js";

export interface DrillCommandOptions {
  /** One domain's chains; undefined: every chain of the host's backup root. */
  domain?: string;
  host?: string;
  timeoutSec: number;
  json: boolean;
}

/**
 * `vmbs drill`: publishes `vmbs.cmd.drill.<host>` (taken by the host's restore service) and prints the drill's
 * events until it completed or failed. Exit 0 = every chain restores, 1 = a fault or the wait timed out.
 */
export async function drillCommand(o: DrillCommandOptions): Promise<number> {
  const client = await connectAsOperator("drill", o.host);
  if (typeof client === "number") return client;
  const { host, nc } = client;
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

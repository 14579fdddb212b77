import { subjects } from "@vmbs/contracts";
import { runHostCommand } from "../host-command.js";
import { connectAsOperator } from "../operator-client.js";

/** The chain upkeep a person can ask a host's agent for. */
export const chainVerbs = ["check", "rotate", "retention"] as const;
export type ChainVerb = (typeof chainVerbs)[number];

export interface ChainCommandOptions {
  verb: ChainVerb;
  /** One domain; undefined: every scheduled domain of the host. */
  domain?: string;
  host?: string;
  timeoutSec: number;
  json: boolean;
  /** Retention only: ask for the plan (`dryRun: true`); nothing is changed. */
  dryRun?: boolean;
}

/**
 * `vmbs check|rotate|retention`: publishes `vmbs.cmd.<verb>.<host>` and prints the chain events it causes until
 * the agent is done. Exit 0 = done and nothing failed or needs attention, 1 = otherwise or timed out, 69 = no agent.
 */
export async function chainCommand(o: ChainCommandOptions): Promise<number> {
  const client = await connectAsOperator(o.verb, o.host);
  if (typeof client === "number") return client;
  const { host, nc } = client;
  return runHostCommand({
    command: o.verb,
    nc,
    host,
    subject: subjects.cmd.forVerb(o.verb, host),
    payload: { ...(o.domain !== undefined ? { domain: o.domain } : {}), ...(o.dryRun ? { dryRun: true } : {}) },
    eventSubjects: [subjects.evt.chainAll(host)],
    takenBy: "agent",
    timeoutSec: o.timeoutSec,
    json: o.json,
  });
}

import { Svcm } from "@nats-io/services";
import type { NatsConnection } from "@vmbs/bus";
import { restoreServiceName } from "@vmbs/contracts";

/** How long a ping collects answers: a live service answers within milliseconds. */
const pingWaitMs = 2_000;

/** True when a restore service of `host` answers a NATS micro ping (it also takes that host's drill commands). */
export async function restoreServiceServes(nc: NatsConnection, host: string): Promise<boolean> {
  try {
    const answers = await new Svcm(nc).client({ strategy: "timer", maxWait: pingWaitMs }).ping(restoreServiceName);
    for await (const identity of answers) if (identity.metadata?.host === host) return true;
    return false;
  } catch (err) {
    // No restore service at all on the bus: the server says so at once.
    if (/no responders/i.test((err as Error).message)) return false;
    throw err;
  }
}

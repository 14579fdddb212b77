import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { publishJson, type NatsConnection } from "@vmbs/bus";
import { mirrorConsumerName, mirrorEventSchema, streams, subjects } from "@vmbs/contracts";
import { eventPrinter } from "../event-lines.js";
import { connectAsOperator } from "../operator-client.js";
import { chainCommand } from "./chain-command.js";

export interface RetentionDryRunOptions {
  domain?: string;
  host?: string;
  timeoutSec: number;
  json: boolean;
}

/** The mirror answers each domain and target with one event; the plan is complete once nothing new came for this long. */
const settleMs = 5_000;

/**
 * `vmbs retention --dry-run`: asks the host's agent (`vmbs.cmd.retention.<host>` with `dryRun`) and, when the
 * host runs a mirror, its mirror (`vmbs.cmd.mirror.<host>` with `dryRun`) what retention and the next backup and
 * sync would archive and delete, and prints their `planned` events. Nothing is changed anywhere.
 * Exit status: the worse of both parts (0 = planned, 1 = a part failed or timed out, 69 = no agent).
 */
export async function retentionDryRun(o: RetentionDryRunOptions): Promise<number> {
  process.stderr.write("vmbs retention: dry run — nothing is deleted or archived, locally or on the mirror\n");
  const local = await chainCommand({ verb: "retention", ...o, dryRun: true });
  const mirror = await mirrorDryRun(o);
  return Math.max(local, mirror);
}

/**
 * Whether a mirror service of `host` is taking its commands now: something pulls (or works on a message of) its
 * durable. `vmbs bus setup` makes that durable for every host, so its mere existence says nothing.
 */
async function mirrorRuns(nc: NatsConnection, host: string): Promise<boolean> {
  const info = await (await jetstreamManager(nc)).consumers.info(streams.commands, mirrorConsumerName(host)).catch(() => undefined);
  return info !== undefined && (info.num_waiting > 0 || info.num_ack_pending > 0);
}

/** The mirror's part of the dry run; 0 also when the host runs no mirror (there is nothing to plan there). */
async function mirrorDryRun(o: RetentionDryRunOptions): Promise<number> {
  const client = await connectAsOperator("retention", o.host);
  if (typeof client === "number") return client;
  const { host, nc } = client;
  const say = (line: string) => process.stderr.write(`vmbs retention: ${line}\n`);
  try {
    if (!(await mirrorRuns(nc, host))) {
      say(`host ${host} runs no mirror now (nothing takes ${subjects.cmd.mirror(host)}): no mirror plan`);
      return 0;
    }
    const requestId = randomUUID();
    const printer = eventPrinter(o.json);
    const events = nc.subscribe(subjects.evt.serviceAll("mirror", host));
    let answers = 0;
    let failed = false;
    let settle: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => events.unsubscribe(), o.timeoutSec * 1000);
    try {
      const ack = await publishJson(nc, subjects.cmd.mirror(host), { ...(o.domain !== undefined ? { domain: o.domain } : {}), dryRun: true, requestId });
      say(`mirror dry run stored in ${ack.stream} #${ack.seq}; waiting for the mirror of host ${host}`);
      for await (const msg of events) {
        const parsed = mirrorEventSchema.safeParse(msg.json());
        if (!parsed.success || parsed.data.requestId !== requestId || parsed.data.type === "started") continue;
        answers++;
        if (parsed.data.type === "failed") failed = true;
        printer.print(msg.subject, parsed.data, parsed.data);
        clearTimeout(settle);
        settle = setTimeout(() => events.unsubscribe(), settleMs);
      }
    } finally {
      clearTimeout(settle);
      clearTimeout(deadline);
    }
    if (answers === 0) {
      say(`no mirror of host ${host} answered within ${o.timeoutSec} s: the mirror part of the plan is unknown (the dry run stays queued; it changes nothing when it runs)`);
      return 1;
    }
    return failed ? 1 : 0;
  } catch (err) {
    say((err as Error).message);
    return 1;
  } finally {
    await nc.close();
  }
}

import { randomUUID } from "node:crypto";
import { mirrorEventSchema, mirrorProgressSchema, parsePayload, subjects, type MirrorEvent } from "@vmbs/contracts";
import { publishJson } from "@vmbs/bus";
import { connectAsOperator } from "../operator-client.js";
import { eventPrinter, wantsHumanOutput } from "../event-lines.js";

export interface MirrorCommandOptions {
  domain?: string;
  host?: string;
  timeoutSec: number;
  json: boolean;
}

/** Without --domain the command covers every chain: done once every started sync ended and nothing new came for this long. */
const settleMs = 5_000;

/**
 * `vmbs mirror`: publishes `vmbs.cmd.mirror.<host>` and prints each sync's events: a line each on a terminal, with
 * a progress bar per running rsync (`vmbs.progress.mirror.<host>`), the outcome events as JSON lines for scripts.
 * Exit 0 = every sync completed, 1 = one failed or the wait timed out.
 */
export async function mirrorCommand(o: MirrorCommandOptions): Promise<number> {
  const client = await connectAsOperator("mirror", o.host);
  if (typeof client === "number") return client;
  const { host, nc } = client;
  const requestId = randomUUID();
  const printer = eventPrinter(o.json);
  // Scripts get the outcomes only (as always); a person also sees each sync start.
  const showStarts = wantsHumanOutput(o.json);
  const events = nc.subscribe(subjects.evt.serviceAll("mirror", host));
  const progress = showStarts ? nc.subscribe(subjects.progress.mirror(host)) : undefined;
  if (progress)
    void (async () => {
      for await (const m of progress) {
        const p = parsePayload(mirrorProgressSchema, m.data);
        if (p.ok && p.value.requestId === requestId) printer.progress(p.value.runId, p.value.domain, p.value);
      }
    })();
  const open = new Set<string>();
  let failed = false;
  let settle: NodeJS.Timeout | undefined;
  // --timeout bounds the whole wait, not only the time to the first event.
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    events.unsubscribe();
  }, o.timeoutSec * 1000);
  try {
    const ack = await publishJson(nc, subjects.cmd.mirror(host), { ...(o.domain ? { domain: o.domain } : {}), requestId });
    process.stderr.write(`command stored in ${ack.stream} #${ack.seq}; waiting for the mirror of host ${host}\n`);
    for await (const msg of events) {
      const parsed = mirrorEventSchema.safeParse(msg.json());
      if (!parsed.success || parsed.data.requestId !== requestId) {
        // A refused command carries no requestId (it could not be read): the only failure without a domain.
        if (parsed.success && parsed.data.type === "failed" && parsed.data.trigger === "command" && !parsed.data.domain) {
          printer.print(msg.subject, parsed.data, parsed.data);
          return 1;
        }
        continue;
      }
      const e: MirrorEvent = parsed.data;
      if (e.type === "started") {
        open.add(e.runId);
        if (showStarts) printer.print(msg.subject, e, e);
      } else {
        open.delete(e.runId);
        printer.print(msg.subject, e, e);
        if (e.type === "failed") failed = true;
        if (o.domain) return failed ? 1 : 0;
      }
      clearTimeout(settle);
      if (open.size === 0) settle = setTimeout(() => events.unsubscribe(), settleMs);
    }
    if (timedOut) process.stderr.write(`vmbs mirror: no outcome within ${o.timeoutSec} s; the sync may still run on ${host}\n`);
    return failed || timedOut || open.size > 0 ? 1 : 0;
  } catch (err) {
    process.stderr.write(`vmbs mirror: ${(err as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(settle);
    clearTimeout(deadline);
    progress?.unsubscribe();
    printer.close();
    await nc.close();
  }
}

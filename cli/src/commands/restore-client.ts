import { randomUUID } from "node:crypto";
import { openHostsBucket, type NatsConnection } from "@vmbs/bus";
import { hostInventorySchema, parsePayload, restoreEventSchema, restoreProgressSchema, subjects, type RestoreEndpoint } from "@vmbs/contracts";
import { select } from "./restore-prompts.js";
import { describeEvent, wantsHumanOutput } from "../event-lines.js";
import { progressBars, type ProgressBars } from "../progress-bars.js";
import { printReply } from "../reply-lines.js";

/** One request to a host's restore service; a refusal or failure is `ok: false` with `{ error }`. */
export type Ask = (endpoint: RestoreEndpoint, body: object, timeoutMs: number) => Promise<{ ok: boolean; json: unknown }>;

/** What `vmbs restore` and `vmbs replicate` ask of the restore service of `host`. */
export function restoreAsker(nc: NatsConnection, host: string): Ask {
  return async (endpoint, body, timeoutMs) => {
    const msg = await nc.request(subjects.svc.restoreEndpoint(host, endpoint), JSON.stringify(body), { timeout: timeoutMs });
    const error = msg.headers?.get("Nats-Service-Error");
    return error ? { ok: false, json: { error } } : { ok: true, json: msg.json() };
  };
}

/**
 * Runs `endpoint` (run, replicate) under a fresh requestId, its events printed on stderr meanwhile, and prints
 * the reply on stdout (printReply); returns the exit status (0 done, 1 refused or failed).
 */
export async function runAndPrint(nc: NatsConnection, host: string, endpoint: RestoreEndpoint, body: object, timeoutMs: number, json: boolean): Promise<number> {
  const requestId = randomUUID();
  // A person (stdout and stderr on a terminal, no --json) also sees a bar of the engine's or the copy's progress.
  const bars = wantsHumanOutput(json) && process.stderr.isTTY === true ? progressBars(process.stderr) : undefined;
  const stopBars = printRunEvents(nc, host, requestId, bars);
  // The bars go before the reply is printed (and whatever ended the wait).
  const reply = await restoreAsker(nc, host)(endpoint, { ...body, requestId }, timeoutMs).finally(stopBars);
  printReply(reply.json, json);
  return reply.ok ? 0 : 1;
}

/**
 * Prints each event of the run with `requestId` on stderr while it runs (every step is a `progress` event): an
 * event line on a terminal, `type: step: reason` otherwise; with `bars`, the run's progress messages
 * (`vmbs.progress.restore.<host>`) move its bar. Returns what ends the bars.
 */
function printRunEvents(nc: NatsConnection, host: string, requestId: string, bars: ProgressBars | undefined): () => void {
  const events = nc.subscribe(subjects.evt.serviceAll("restore", host));
  const progress = bars ? nc.subscribe(subjects.progress.restore(host)) : undefined;
  const terminal = process.stderr.isTTY === true;
  const colour = terminal && !process.env.NO_COLOR;
  // The run is over once its last event came: a progress message still on its way must not draw its bar again.
  let over = false;
  void (async () => {
    for await (const m of events) {
      const e = restoreEventSchema.safeParse(m.json());
      if (!e.success || e.data.requestId !== requestId) continue;
      const line = terminal ? describeEvent(m.subject, e.data, colour) : `${e.data.type}${e.data.step ? `: ${e.data.step}` : ""}${e.data.reason ? `: ${e.data.reason}` : ""}`;
      if (e.data.type === "completed" || e.data.type === "failed") {
        over = true;
        bars?.end(e.data.runId);
      }
      if (bars) bars.line(line);
      else process.stderr.write(`${line}\n`);
    }
  })();
  if (progress)
    void (async () => {
      for await (const m of progress) {
        const p = parsePayload(restoreProgressSchema, m.data);
        if (p.ok && p.value.requestId === requestId && !over) bars!.update(p.value.runId, p.value.target, p.value);
      }
    })();
  // The event lines go on until the connection closes (a last one may still be on its way); the bars end here.
  return () => {
    progress?.unsubscribe();
    bars?.close();
  };
}

/** Asks on the terminal; the default answer is no. */
export const confirm = (question: string): Promise<boolean> => select(question, [{ label: "No", value: false }, { label: "Yes", value: true }]);

/** A domain of the host, chosen from its agent's inventory (vmbs_hosts). */
export async function chooseDomain(nc: NatsConnection, host: string): Promise<string> {
  const entry = await (await openHostsBucket(nc)).get(host);
  const inventory = entry ? hostInventorySchema.parse(entry.json()) : undefined;
  if (!inventory) throw new Error(`host ${host} has no inventory (is its agent running?); give --domain`);
  return select("Domain", inventory.domains.map((d) => ({ label: `${d.name} (${d.state})`, value: d.name })));
}

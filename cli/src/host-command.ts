import { randomUUID } from "node:crypto";
import { commandOutcomeKey, msgIdIdentity, publishJson, readBucketKey, type CommandRecord, type NatsConnection } from "@vmbs/bus";
import { backupProgressSchema, buckets, parseEvent, parsePayload, splitEventSubject } from "@vmbs/contracts";
import { eventPrinter } from "./event-lines.js";
import { exitStatus } from "./exit-reasons.js";

/*
 * A one-shot command to a host's service (`vmbs backup|check|rotate|retention|drill`): publish it with the
 * operator's credentials, print the events it causes, and end with its outcome — or with an honest reason to stop
 * waiting (no live agent, the agent went away, the whole wait took longer than --timeout).
 */

export interface HostCommand {
  /** The CLI command, for messages: "backup", "check", … */
  command: string;
  nc: NatsConnection;
  host: string;
  /** The command's subject and payload (a requestId is added). */
  subject: string;
  payload: Record<string, unknown>;
  /** Event subjects that carry this command's outcome (matched by requestId). */
  eventSubjects: string[];
  /** The core-NATS subject of its runs' progress (a backup's), drawn as bars on a terminal. */
  progressSubject?: string;
  /**
   * `agent`: taken by the host's backup agent, which records the command's outcome (vmbs_command_outcomes) and
   * holds the presence key; done when that record is. `drill`: taken by the restore service; done at the drill's
   * `completed` or `failed` event.
   */
  takenBy: "agent" | "drill";
  /** The whole wait, from the publish to the outcome. */
  timeoutSec: number;
  json: boolean;
}

/** How often the outcome record is read while waiting, and how often the agent's presence. */
const outcomePollMs = 500;
const presencePollMs = 5_000;
/** A connection lost for this long ends the wait: the server is gone (e.g. it was the local one of a stopped vmbs start). */
const disconnectedMaxMs = 10_000;

/** The live agent of `host` (its presence record), or undefined: none holds the key (or the bucket is missing). */
export async function liveAgentOf(nc: NatsConnection, host: string): Promise<{ hostname?: string; pid?: number; since?: string } | undefined> {
  const stored = await readBucketKey(nc, buckets.agentPresence, host).catch((err: unknown) => {
    // No presence bucket (a bus no agent ever used) answers like a missing key: nobody is there.
    if (/no responders|stream not found/i.test((err as Error).message)) return undefined;
    throw err;
  });
  if (!stored || stored.forged) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(stored.value)) as { hostname?: string; pid?: number; since?: string };
  } catch {
    return {};
  }
}

/** A failed event, or a chain that needs a person: the command did not simply succeed. */
function isBad(subject: string, event: Record<string, unknown>): boolean {
  const type = splitEventSubject(subject)?.type ?? event.type;
  return type === "failed" || type === "attention";
}

/** Runs the command; returns the exit status: 0 done and all well, 1 something failed or the wait timed out, 69 no agent. */
export async function runHostCommand(o: HostCommand): Promise<number> {
  const { nc, host } = o;
  const say = (line: string) => process.stderr.write(`vmbs ${o.command}: ${line}\n`);
  if (o.takenBy === "agent") {
    const agent = await liveAgentOf(nc, host).catch((err: unknown) => err as Error);
    if (agent instanceof Error || !agent) {
      await nc.close();
      if (agent) return (say(agent.message), 1);
      say(`host ${host} has no live agent (nothing holds ${buckets.agentPresence} ${host}); nothing was sent — start vmbs start (or vmbs agent) there, or check --host`);
      return exitStatus.natsUnavailable;
    }
  }
  const requestId = randomUUID();
  const msgId = `vmbs-cli.${requestId}`;
  const printer = eventPrinter(o.json);
  const printed = new Set<string>();
  // The runs this command caused (their events name our requestId); a run it joined names another request, but its
  // started event, shown to us too, gives its runId.
  const runIds = new Set<string>();
  let bad = false;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const show = (subject: string, event: Record<string, unknown>, eventMsgId: string | undefined): void => {
    // The same event may come live and again from the outcome record (or twice, redelivered): printed once.
    if (eventMsgId !== undefined) {
      if (printed.has(eventMsgId)) return;
      printed.add(eventMsgId);
    }
    if (typeof event.runId === "string") runIds.add(event.runId);
    printer.print(subject, event, event);
    if (isBad(subject, event)) bad = true;
  };

  const subscriptions = o.eventSubjects.map((subject) => nc.subscribe(subject));
  for (const sub of subscriptions)
    void (async () => {
      for await (const m of sub) {
        const parsed = parseEvent(m.subject, m.data);
        if (!parsed.ok || parsed.value.requestId !== requestId) continue;
        show(m.subject, parsed.value, m.headers?.get("Nats-Msg-Id") || undefined);
        if (o.takenBy === "drill" && (parsed.value.type === "completed" || parsed.value.type === "failed")) finish(bad ? 1 : 0);
      }
    })();

  const progress = o.progressSubject ? nc.subscribe(o.progressSubject) : undefined;
  if (progress)
    void (async () => {
      for await (const m of progress) {
        const parsed = parsePayload(backupProgressSchema, m.data);
        if (!parsed.ok) continue;
        const p = parsed.value;
        if (p.requestId === requestId || runIds.has(p.runId)) printer.progress(p.runId, p.domain, p);
      }
    })();

  let timer: NodeJS.Timeout | undefined;
  let offline: NodeJS.Timeout | undefined;
  let polling = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect")
        offline ??= setTimeout(() => {
          say(`lost the connection to NATS for ${disconnectedMaxMs / 1000} s; the command may still run on ${host}`);
          finish(exitStatus.natsUnavailable);
        }, disconnectedMaxMs);
      else if (status.type === "reconnect") {
        clearTimeout(offline);
        offline = undefined;
      }
    }
  })();
  try {
    const ack = await publishJson(nc, o.subject, { ...o.payload, requestId }, msgId);
    say(`command stored in ${ack.stream} #${ack.seq}; waiting for host ${host} (at most ${o.timeoutSec} s)`);
    timer = setTimeout(() => {
      say(`no outcome within ${o.timeoutSec} s; the command may still run on ${host} (vmbs events --host ${host} --follow)`);
      finish(1);
    }, o.timeoutSec * 1000);
    if (o.takenBy === "agent")
      void (async () => {
        const key = commandOutcomeKey(host, msgIdIdentity(msgId));
        let lastPresenceCheck = Date.now();
        while (polling) {
          await new Promise((resolve) => setTimeout(resolve, outcomePollMs));
          if (!polling) return;
          try {
            const stored = await readBucketKey(nc, buckets.commandOutcomes, key);
            const record = stored && !stored.forged ? (JSON.parse(new TextDecoder().decode(stored.value)) as CommandRecord) : undefined;
            if (record?.state === "done") {
              // Whatever did not come live (published after the record, or missed) is in the record; like the live
              // ones, only the events that name this request.
              for (const e of record.events) {
                const payload = e.payload as Record<string, unknown> | null;
                if (typeof payload === "object" && payload !== null && payload.requestId === requestId) show(e.subject, payload, e.msgId);
              }
              return finish(bad ? 1 : 0);
            }
            if (Date.now() - lastPresenceCheck >= presencePollMs) {
              lastPresenceCheck = Date.now();
              if (!(await liveAgentOf(nc, host))) {
                say(`the agent of ${host} went away before the command was done; it stays queued and runs when the agent is back`);
                return finish(exitStatus.natsUnavailable);
              }
            }
          } catch {
            // NATS reconnecting or the bucket not there yet: read again at the next tick; the timeout bounds it.
          }
        }
      })();
    return await finished;
  } catch (err) {
    say((err as Error).message);
    return 1;
  } finally {
    polling = false;
    clearTimeout(timer);
    clearTimeout(offline);
    for (const sub of subscriptions) sub.unsubscribe();
    progress?.unsubscribe();
    printer.close();
    await nc.close();
  }
}

import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { isHostToken, parseEvent, streams, subjects } from "@vmbs/contracts";
import { eventPrinter } from "../event-lines.js";
import { connectOperatorBus } from "../operator-client.js";
import { loadConfigOrExit } from "../runtime.js";

export interface EventsCommandOptions {
  /** Only this host's events; undefined: every host. */
  host?: string;
  /** How far back the history goes, e.g. "24h", "30m", "7d", or "all". */
  since: string;
  follow: boolean;
  json: boolean;
}

const unitMs: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "30m", "24h", "7d" → milliseconds; "all" → undefined (the whole stream); anything else → NaN. */
export function parseSince(text: string): number | undefined {
  if (text === "all") return undefined;
  const m = /^(\d+)([smhd])$/.exec(text);
  return m ? Number(m[1]) * unitMs[m[2]!]! : Number.NaN;
}

/**
 * `vmbs events`: the event history of VMBS_EVT (since --since), then with --follow every new event as it comes,
 * until Ctrl-C. Human lines on a terminal; JSON lines `{subject, seq, event}` with --json or when stdout is not a
 * terminal. Exit 0, 2 bad usage.
 */
export async function eventsCommand(o: EventsCommandOptions): Promise<number> {
  const sinceMs = parseSince(o.since);
  if (Number.isNaN(sinceMs)) {
    process.stderr.write(`vmbs events: --since must be a number with s, m, h or d (e.g. 24h), or all (got ${JSON.stringify(o.since)})\n`);
    return 2;
  }
  if (o.host !== undefined && !isHostToken(o.host)) {
    process.stderr.write(`vmbs events: --host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(o.host)})\n`);
    return 2;
  }
  const config = loadConfigOrExit(process.env);
  const nc = await connectOperatorBus("events", config);
  if (typeof nc === "number") return nc;
  try {
    // An ordered consumer: ephemeral, server-side filtered, gone when this client is.
    const consumer = await jetstream(nc).consumers.get(streams.events, {
      filter_subjects: o.host ? subjects.evt.hostAll(o.host) : subjects.eventsAll,
      ...(sinceMs === undefined
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - sinceMs).toISOString() }),
    });
    const printer = eventPrinter(o.json);
    if (!o.follow && (await consumer.info()).num_pending === 0) return 0;
    for await (const m of await consumer.consume()) {
      const parsed = parseEvent(m.subject, m.data);
      if (parsed.ok) printer.print(m.subject, parsed.value, { subject: m.subject, seq: m.seq, event: parsed.value });
      else process.stderr.write(`vmbs events: #${m.seq} on ${m.subject} is not a valid event (${parsed.reason})\n`);
      if (!o.follow && m.info.pending === 0) break;
    }
    return 0;
  } catch (err) {
    process.stderr.write(`vmbs events: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

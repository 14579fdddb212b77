import { backupEventSchema } from "./backup.js";
import { chainEventSchema } from "./chain.js";
import { drillEventSchema } from "./drill.js";
import { fleetBackSchema, fleetSilentSchema, fleetStaleSchema } from "./fleet-status.js";
import { mirrorEventSchema } from "./mirror.js";
import { notifyDigestSchema, notifyFailedSchema } from "./notify.js";
import { parsePayload, type ParseResult } from "./parse-payload.js";
import { restoreEventSchema } from "./restore.js";

type EventSchema = Parameters<typeof parsePayload>[0];

/** The tokens of `vmbs.evt.<service>.<host>.<type>`. */
export interface EventSubject {
  service: string;
  host: string;
  type: string;
}

/** An event payload as its contract accepted it (defaults filled in, unknown keys dropped). */
export type ContractEvent = Record<string, unknown> & { type: string; host: string };

/** The tokens of an event subject; undefined for any other subject. */
export function splitEventSubject(subject: string): EventSubject | undefined {
  const parts = subject.split(".");
  if (parts.length !== 5 || parts[0] !== "vmbs" || parts[1] !== "evt") return undefined;
  const [, , service, host, type] = parts as [string, string, string, string, string];
  return { service, host, type };
}

// Maps, not objects: a subject token such as `constructor` must not find an inherited property.
/** The contract of each service's events, whatever their type (the payload's `type` says which). */
export const serviceEventSchemas: ReadonlyMap<string, EventSchema> = new Map<string, EventSchema>([
  ["backup", backupEventSchema],
  ["chain", chainEventSchema],
  ["mirror", mirrorEventSchema],
  ["restore", restoreEventSchema],
  ["drill", drillEventSchema],
]);
/** Services whose events differ in shape by type. */
export const typedEventSchemas: ReadonlyMap<string, ReadonlyMap<string, EventSchema>> = new Map<string, Map<string, EventSchema>>([
  [
    "notify",
    new Map<string, EventSchema>([
      ["failed", notifyFailedSchema],
      ["digest", notifyDigestSchema],
    ]),
  ],
  [
    "fleet",
    new Map<string, EventSchema>([
      ["silent", fleetSilentSchema],
      ["back", fleetBackSchema],
      ["stale", fleetStaleSchema],
    ]),
  ],
]);

/**
 * Checks an event against the contract of its subject, and that its payload names the subject's own host and
 * type (the subject is what roles are allowed to publish; the rest is only what the publisher claims).
 */
export function parseEvent(subject: string, data: Uint8Array): ParseResult<ContractEvent> {
  const s = splitEventSubject(subject);
  if (!s) return { ok: false, reason: "not an event subject" };
  const schema = typedEventSchemas.get(s.service)?.get(s.type) ?? serviceEventSchemas.get(s.service);
  if (!schema) return { ok: false, reason: `no contract for ${s.service} ${s.type} events` };
  const parsed = parsePayload(schema, data);
  if (!parsed.ok) return parsed;
  const event = parsed.value as ContractEvent;
  if (event.type !== s.type) return { ok: false, reason: `payload type ${event.type} on a ${s.type} subject` };
  if (event.host !== s.host) return { ok: false, reason: `payload host ${event.host} on a subject of host ${s.host}` };
  return { ok: true, value: event };
}

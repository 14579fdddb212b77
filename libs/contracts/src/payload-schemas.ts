import { z } from "zod";
import { backupCommandSchema, backupProgressSchema } from "./backup.js";
import { chainCommandSchema } from "./chain.js";
import { drillCommandSchema } from "./drill.js";
import { serviceEventSchemas, typedEventSchemas } from "./event-contract.js";
import { domainHistoryRequestSchema, domainHistorySchema, fleetStatusRequestSchema, fleetStatusSchema } from "./fleet-status.js";
import { mirrorCommandSchema, mirrorProgressSchema } from "./mirror.js";
import { instantAbandonReplySchema, instantEndRequestSchema, instantFinishReplySchema, instantRestoreReplySchema, instantRestoreRequestSchema } from "./instant-restore.js";
import { replicatePlanReplySchema, replicateReplySchema, replicateRequestSchema } from "./replicate.js";
import {
  restoreCheckpointsReplySchema,
  restoreCheckpointsRequestSchema,
  restorePlanReplySchema,
  restoreRunReplySchema,
  restoreProgressSchema,
  restoreRunRequestSchema,
  restoreSetsReplySchema,
  restoreSetsRequestSchema,
} from "./restore.js";
import { subjects, type CommandVerb, type EventService, type RestoreEndpoint, type StatusEndpoint } from "./subjects.js";

/*
 * The published JSON Schemas (schemas/*.schema.json at the repository root, `npm run schemas`): one per subject
 * pattern and payload kind, made from the zod contracts the services parse with, and named in the metadata of
 * the NATS micro endpoints.
 */

export type PayloadKind = "command" | "event" | "progress" | "request" | "reply";

export interface PayloadContract {
  /** The subject pattern with `<host>` for the host token, e.g. `vmbs.cmd.backup.<host>`. */
  subject: string;
  kind: PayloadKind;
  /** File name in schemas/, also the schema's `$id`. */
  file: string;
  schema: z.ZodType;
}

/** The payload of every command, by the verb of `vmbs.cmd.<verb>.<host>`. */
const commandSchemas: Record<CommandVerb | "mirror" | "drill", z.ZodType> = {
  backup: backupCommandSchema,
  check: chainCommandSchema,
  rotate: chainCommandSchema,
  retention: chainCommandSchema,
  mirror: mirrorCommandSchema,
  drill: drillCommandSchema,
};

interface EndpointSchemas {
  request: z.ZodType;
  reply: z.ZodType;
}

const restoreEndpointSchemas: Record<RestoreEndpoint, EndpointSchemas> = {
  sets: { request: restoreSetsRequestSchema, reply: restoreSetsReplySchema },
  checkpoints: { request: restoreCheckpointsRequestSchema, reply: restoreCheckpointsReplySchema },
  plan: { request: restoreRunRequestSchema, reply: restorePlanReplySchema },
  run: { request: restoreRunRequestSchema, reply: restoreRunReplySchema },
  replicate: { request: replicateRequestSchema, reply: replicateReplySchema },
  "replicate-plan": { request: replicateRequestSchema, reply: replicatePlanReplySchema },
  instant: { request: instantRestoreRequestSchema, reply: instantRestoreReplySchema },
  "instant-finish": { request: instantEndRequestSchema, reply: instantFinishReplySchema },
  "instant-abandon": { request: instantEndRequestSchema, reply: instantAbandonReplySchema },
};

const statusEndpointSchemas: Record<StatusEndpoint, EndpointSchemas> = {
  fleet: { request: fleetStatusRequestSchema, reply: fleetStatusSchema },
  history: { request: domainHistoryRequestSchema, reply: domainHistorySchema },
};

// Subjects are spelled by subjects.ts only: they are built for this placeholder host, which is then shown as `<host>`.
const placeholderHost = "_host_";
const hostShown = "<host>";

function contract(subject: string, kind: PayloadKind, schema: z.ZodType): PayloadContract {
  const tokens = subject.split(".").filter((t) => t !== "vmbs" && t !== placeholderHost && t !== "*");
  const suffix = kind === "request" || kind === "reply" ? `.${kind}` : "";
  return { subject: subject.replace(`.${placeholderHost}`, `.${hostShown}`), kind, file: `${tokens.join(".")}${suffix}.schema.json`, schema };
}

function endpointContracts(subject: string, schemas: EndpointSchemas): PayloadContract[] {
  return [contract(subject, "request", schemas.request), contract(subject, "reply", schemas.reply)];
}

/** Every command, event and endpoint payload of the bus, in the order the README lists them. */
export const payloadContracts: readonly PayloadContract[] = [
  ...Object.entries(commandSchemas).map(([verb, schema]) => contract(subjects.cmd.forVerb(verb as CommandVerb, placeholderHost), "command", schema)),
  ...[...serviceEventSchemas].map(([service, schema]) =>
    contract(subjects.evt.serviceAll(service as EventService, placeholderHost), "event", schema),
  ),
  ...[...typedEventSchemas].flatMap(([service, byType]) =>
    [...byType].map(([type, schema]) =>
      contract(subjects.evt.serviceAll(service as EventService, placeholderHost).replace(/\*$/, type), "event", schema),
    ),
  ),
  contract(subjects.progress.backup(placeholderHost), "progress", backupProgressSchema),
  contract(subjects.progress.mirror(placeholderHost), "progress", mirrorProgressSchema),
  contract(subjects.progress.restore(placeholderHost), "progress", restoreProgressSchema),
  ...Object.entries(restoreEndpointSchemas).flatMap(([endpoint, schemas]) =>
    endpointContracts(subjects.svc.restoreEndpoint(placeholderHost, endpoint as RestoreEndpoint), schemas),
  ),
  ...Object.entries(statusEndpointSchemas).flatMap(([endpoint, schemas]) => endpointContracts(subjects.svc.statusEndpoint(endpoint as StatusEndpoint), schemas)),
];

const kindWords: Record<PayloadKind, string> = {
  command: "Payload of the command",
  event: "Payload of the events",
  progress: "Payload of the ephemeral progress messages (core NATS, stored by no stream)",
  request: "Request of the NATS micro endpoint",
  reply: "Reply of the NATS micro endpoint (a refusal or failure is answered instead with the Nats-Service-Error headers and {\"error\": reason})",
};

/**
 * The JSON Schema of one payload as it is accepted on the wire (zod's input side: fields with a default may be
 * left out). Checks zod cannot express in JSON Schema (refinements such as "exactly one of `as` and `inPlace`")
 * are only made by the service.
 */
export function payloadJsonSchema(c: PayloadContract): Record<string, unknown> {
  const body = z.toJSONSchema(c.schema, {
    io: "input",
    // zod's `format: "starts_with"` is no JSON Schema format (strict validators refuse it); its `pattern` says the same.
    override: (ctx) => {
      if (ctx.jsonSchema.format === "starts_with") delete ctx.jsonSchema.format;
    },
  });
  const { $schema, ...rest } = body;
  return { $schema, $id: c.file, title: c.subject, description: `${kindWords[c.kind]} ${c.subject}.`, ...rest };
}

/** The schema files as `npm run schemas` writes them: file name → text. */
export function renderSchemaFiles(): Map<string, string> {
  return new Map(payloadContracts.map((c) => [c.file, `${JSON.stringify(payloadJsonSchema(c), null, 2)}\n`]));
}

/** Metadata of a NATS micro endpoint naming its request and reply schemas (files in schemas/, their `$id`). */
export interface EndpointSchemaMetadata extends Record<string, string> {
  request_schema: string;
  response_schema: string;
}

function endpointMetadata(subject: string): EndpointSchemaMetadata {
  const shown = subject.replace(`.${placeholderHost}`, `.${hostShown}`);
  const file = (kind: PayloadKind): string => payloadContracts.find((c) => c.subject === shown && c.kind === kind)!.file;
  return { request_schema: file("request"), response_schema: file("reply") };
}

export function restoreEndpointMetadata(endpoint: RestoreEndpoint): EndpointSchemaMetadata {
  return endpointMetadata(subjects.svc.restoreEndpoint(placeholderHost, endpoint));
}

export function statusEndpointMetadata(endpoint: StatusEndpoint): EndpointSchemaMetadata {
  return endpointMetadata(subjects.svc.statusEndpoint(endpoint));
}

export * from "./nats-server.js";
export { connectBus, BusConnectError, type NatsConnection } from "./connect-bus.js";
export { ensureStreams, openHostsBucket, defaultHostTtlMs, type TopologyOptions } from "./topology.js";
export {
  consumeCommands,
  type CommandConsumer,
  type CommandContext,
  type ConsumeCommandsOptions,
  type Disposition,
} from "./consume-commands.js";
export { publishJson } from "./publish-json.js";
export type { JsMsg } from "@nats-io/jetstream";
export type { KV } from "@nats-io/kv";
export * from "./chain-lease.js";
export { openEventOutbox, jetStreamSender, type EventOutbox, type EventOutboxOptions, type OutboxEvent, type OutboxSender } from "./event-outbox.js";
export {
  openCommandOutcomeStore,
  openCommandOutcomesBucket,
  commandIdentity,
  commandOutcomeKey,
  defaultOutcomeMaxAgeMs,
  type CommandOutcomeStore,
  type CommandOutcomeStoreOptions,
  type CommandRecord,
} from "./command-outcomes.js";
export { createCommandJournal, type CommandJournal, type CommandJournalOptions, type CommandRun, type JournaledHandler } from "./command-journal.js";

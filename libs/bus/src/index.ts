export {
  connectBus,
  BusConnectError,
  isPermissionViolation,
  splitNatsUrl,
  type BusAuth,
  type NatsConnection,
  type SplitNatsUrl,
} from "./connect-bus.js";
export { ensureStreams, openHostsBucket, setUpBus, commandMaxBytes, eventMaxMsgBytes, reservedStoreBytes, type EnsureStreamsResult, type SetUpBusOptions, type TopologyOptions } from "./topology.js";
export { openBucket, readBucket, readBucketKey, type BucketEntry, type BucketValue, type BucketLimits, type OpenBucket } from "./kv-buckets.js";
export { StreamReplicasError } from "./stream-replicas.js";
export * from "./durables.js";
export { readHostInventories, readHostInventory, type RefusedHostEntry } from "./host-inventories.js";
export {
  consumeDurable,
  ensureDurable,
  DurableMissingError,
  ForeignMessageError,
  type DurableSpec,
  type DurableConsumer,
  type CommandContext,
  type ConsumeDurableOptions,
  type Disposition,
} from "./consume-durable.js";
export { publishJson } from "./publish-json.js";
export { isRedirectedStoredMessage } from "./forged-delivery.js";
export type { JsMsg } from "@nats-io/jetstream";
export type { KV } from "@nats-io/kv";
export * from "./chain-lease.js";
export { createChainGuard, type ChainGuard } from "./chain-guard.js";
export { createDomainQueue, type DomainQueue } from "./domain-queue.js";
export {
  createChainEventPublisher,
  createBackupEventPublisher,
  type PublishChainEvent,
  type PublishBackupEvent,
  type ChainEventInput,
} from "./publish-events.js";
export * from "./agent-presence.js";
export * from "./auth-config.js";
export { openEventOutbox, jetStreamSender, type EventOutbox, type EventOutboxOptions, type OutboxEvent, type OutboxSender } from "./event-outbox.js";
export {
  openCommandOutcomeStore,
  openCommandOutcomesBucket,
  commandIdentity,
  commandOutcomeKey,
  msgIdIdentity,
  type CommandOutcomeStore,
  type CommandOutcomeStoreOptions,
  type CommandRecord,
} from "./command-outcomes.js";
export { createCommandJournal, type CommandJournal, type CommandJournalOptions, type CommandRun, type JournaledHandler } from "./command-journal.js";
export { tickProgress, defaultProgressIntervalMs, type ProgressFigures, type ProgressSample, type ProgressTicker } from "./progress-ticker.js";

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
export { backupRootId, BackupRootMarkerError } from "./backup-root-id.js";

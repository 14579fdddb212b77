import { chainEventSchema, subjects, type ChainEvent } from "@vmbs/contracts";
import { backupEventSchema, type BackupEvent, type BackupFailed } from "@vmbs/contracts";
import type { NatsConnection } from "@nats-io/transport-node";
import { publishJson } from "./publish-json.js";

/** A chain event as the checker builds it; host and time are filled in on publish. */
export type ChainEventInput = Omit<ChainEvent, "host" | "at">;
export type PublishChainEvent = (event: ChainEventInput) => Promise<void>;

/** Publishes `vmbs.evt.chain.<host>.<type>`, validated against the contract so a bad event never leaves. */
export function createChainEventPublisher(nc: NatsConnection, host: string): PublishChainEvent {
  return async (input) => {
    const event = chainEventSchema.parse({ ...input, host, at: new Date().toISOString() });
    await publishJson(nc, subjects.evt.chain(host, event.type), event);
  };
}

export type PublishBackupEvent = (event: BackupEvent | BackupFailed) => Promise<void>;
/** The same for `vmbs.evt.backup.<host>.<type>`. */
export function createBackupEventPublisher(nc: NatsConnection, host: string): PublishBackupEvent {
  return async (input) => {
    const event = backupEventSchema.parse({ ...input, host });
    await publishJson(nc, subjects.evt.backup(host, event.type), event);
  };
}

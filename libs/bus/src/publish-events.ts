import { randomUUID } from "node:crypto";
import { backupEventSchema, chainEventSchema, eventMessageId, subjects, type BackupEvent, type BackupFailed, type ChainEvent } from "@vmbs/contracts";
import type { OutboxEvent } from "./event-outbox.js";

/** Where events go: the agent's durable outbox (`EventOutbox.announce` or a command journal's). */
export type Announce = (event: OutboxEvent) => Promise<void>;

/** A chain event as the checker builds it; host and time are filled in on publish. */
export type ChainEventInput = Omit<ChainEvent, "host" | "at">;
export type PublishChainEvent = (event: ChainEventInput) => Promise<void>;

/**
 * Announces `vmbs.evt.chain.<host>.<type>` through `announce`, validated against the contract so a bad event
 * never leaves, with a message id of its own.
 */
export function createChainEventPublisher(announce: Announce, host: string): PublishChainEvent {
  return async (input) => {
    const event = chainEventSchema.parse({ ...input, host, at: new Date().toISOString() });
    const subject = subjects.evt.chain(host, event.type);
    await announce({ subject, msgId: eventMessageId(subject, randomUUID()), payload: event });
  };
}

export type PublishBackupEvent = (event: BackupEvent | BackupFailed) => Promise<void>;
/** The same for `vmbs.evt.backup.<host>.<type>`; the message id is the subject and the run id (one per run and type). */
export function createBackupEventPublisher(announce: Announce, host: string): PublishBackupEvent {
  return async (input) => {
    const event = backupEventSchema.parse({ ...input, host });
    const subject = subjects.evt.backup(host, event.type);
    await announce({ subject, msgId: eventMessageId(subject, event.runId), payload: event });
  };
}

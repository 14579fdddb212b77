import { randomUUID } from "node:crypto";
import { chainEventSchema, eventMessageId, subjects, type ChainEvent } from "@vmbs/contracts";
import type { OutboxEvent } from "@vmbs/bus";

/** A chain event as the checker builds it; host and time are filled in on publish. */
export type ChainEventInput = Omit<ChainEvent, "host" | "at">;
export type PublishChainEvent = (event: ChainEventInput) => Promise<void>;

/**
 * Announces `vmbs.evt.chain.<host>.<type>` through `announce` (the agent's outbox), validated against the
 * contract so a bad event never leaves, with a message id of its own.
 */
export function createChainEventPublisher(announce: (event: OutboxEvent) => Promise<void>, host: string): PublishChainEvent {
  return async (input) => {
    const event = chainEventSchema.parse({ ...input, host, at: new Date().toISOString() });
    const subject = subjects.evt.chain(host, event.type);
    await announce({ subject, msgId: eventMessageId(subject, randomUUID()), payload: event });
  };
}

import { chainEventSchema, subjects, type ChainEvent } from "@vmbs/contracts";
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

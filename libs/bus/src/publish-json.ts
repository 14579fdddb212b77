import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type PubAck } from "@nats-io/jetstream";

/**
 * Publishes a JSON payload into a stream and waits for the stream's ack. `msgId` sets Nats-Msg-Id, so a
 * repeat within the duplicate window is stored once (`ack.duplicate === true`).
 */
export async function publishJson(nc: NatsConnection, subject: string, payload: unknown, msgId?: string): Promise<PubAck> {
  return jetstream(nc).publish(subject, JSON.stringify(payload), msgId ? { msgID: msgId } : undefined);
}

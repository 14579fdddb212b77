import type { MsgHdrs } from "@nats-io/transport-node";

/*
 * What a client cannot prevent by permissions: the reply subject of its own request is where the server answers,
 * and nats-server checks no permission there. A JetStream direct get answers with the raw stored value, so a client
 * that may read a key could have the server publish that value to ANY subject: another host's restore endpoint, or
 * a command or event subject a stream then stores (reproduced on nats-server 2.9). Roles read by message gets and
 * the buckets serve no direct gets (roles.ts, kvRead); should a server publish such an answer all the same, it
 * carries the headers of a stored message, which no publisher of ours ever sets, and a request made that way has
 * no reply subject. Services refuse both.
 */

/** Headers the server sets on a stored message it hands out (direct get); never on a message a client publishes. */
const storedMessageHeaders = ["Nats-Stream", "Nats-Subject", "Nats-Sequence"] as const;

/**
 * True when a message is a JetStream answer redirected here rather than something published to this subject; also
 * when a value read from a bucket (message gets add no headers) was such an answer, stored because its subject was
 * a key (another host's inventory, lease or command outcome, written by the server for whoever asked).
 */
export function isRedirectedStoredMessage(headers: MsgHdrs | undefined): boolean {
  return storedMessageHeaders.some((h) => headers?.has(h) === true);
}


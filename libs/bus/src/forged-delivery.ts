import type { MsgHdrs } from "@nats-io/transport-node";

/*
 * What a client cannot prevent by permissions: the reply subject of its own request is where the server answers,
 * and nats-server checks no permission there. A JetStream direct get answers with the raw stored value, so a role
 * that may read its own KV key can have the server publish that value — which it wrote — to ANY subject: another
 * host's restore endpoint, or a command or event subject a stream then stores (reproduced on nats-server 2.9).
 * Such an answer carries the headers of a stored message, which no publisher of ours ever sets, and a request made
 * that way has no reply subject. Services refuse both.
 */

/** Headers the server sets on a stored message it hands out (direct get); never on a message a client publishes. */
const storedMessageHeaders = ["Nats-Stream", "Nats-Subject", "Nats-Sequence"] as const;

/** True when a message is a JetStream answer redirected here rather than something published to this subject. */
export function isRedirectedStoredMessage(headers: MsgHdrs | undefined): boolean {
  return storedMessageHeaders.some((h) => headers?.has(h) === true);
}

/**
 * True when a stored message read with a direct get was itself such an answer, stored because its subject was a
 * bucket's key (another host's inventory or command outcome, written by the server for whoever asked): the direct
 * get adds its own stored-message headers, so a forged entry carries them twice.
 */
export function isForgedStoredMessage(headers: MsgHdrs | undefined): boolean {
  return storedMessageHeaders.some((h) => (headers?.values(h).length ?? 0) > 1);
}

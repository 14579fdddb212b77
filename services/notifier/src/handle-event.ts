import type { Disposition, JsMsg } from "@vmbs/bus";
import { parseEvent, type NotifyTarget } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import type { DeliveryQueue } from "./delivery-queue.js";
import type { DigestCollector } from "./digest-collector.js";
import { matchesFilter } from "./match-target.js";
import { renderEvent } from "./render-event.js";

export interface EventHandlerDeps {
  targets: NotifyTarget[];
  queue: DeliveryQueue;
  /** The run digest, when some target wants it. */
  digests?: DigestCollector;
  logger: Logger;
}

/** An event's identity: its Nats-Msg-Id (the same for every re-publish), else its stream position. */
function eventIdentity(msg: JsMsg): string {
  return msg.headers?.get("Nats-Msg-Id") || `${msg.subject}@${msg.seq}`;
}

/**
 * The identity a delivery job is known by. Refused backup commands of a flooded domain share one per hour, so a
 * flood of thousands notifies each target once an hour, not once per command (the jobs' ids dedupe them).
 */
function deliveryIdentity(msg: JsMsg, event: Record<string, unknown>): string {
  if (event.refused !== true) return eventIdentity(msg);
  return `${msg.subject}#refused#${String(event.domain ?? "")}#${new Date().toISOString().slice(0, 13)}`;
}

/** One event of the `notifier` durable: one delivery job per matching target, acked once Redis holds them. */
export function createEventHandler(deps: EventHandlerDeps): (msg: JsMsg) => Promise<Disposition> {
  const { logger, queue, digests } = deps;
  return async (msg) => {
    // A malformed event fails the same way on every delivery: retrying it would only hold a slot forever.
    const parsed = parseEvent(msg.subject, msg.data);
    if (!parsed.ok) {
      logger.warn({ subject: msg.subject, reason: parsed.reason }, "event refused by its contract; dropped");
      return "term";
    }
    const event = parsed.value;
    // A dry run's answer (`planned`) is for the person who asked, on their terminal: nothing happened to notify.
    if (event.type === "planned") return "ack";
    const n = renderEvent(msg.subject, event)!; // parseEvent accepted the subject
    // A notification about a target that gave up is not sent to that same target (it would loop).
    const skipTarget = n.service === "notify" ? event.targetId : undefined;
    await digests?.observe(n, event);
    const id = deliveryIdentity(msg, event);
    for (const target of deps.targets) {
      if (target.id === skipTarget || !matchesFilter(target.filter, n)) continue;
      await queue.enqueue(id, target, { notification: n, eventSubject: msg.subject, event });
    }
    return "ack";
  };
}

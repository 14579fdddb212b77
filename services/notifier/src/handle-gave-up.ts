import { publishJson, type NatsConnection } from "@vmbs/bus";
import { eventMessageId, subjects, type NotifyFailedEvent } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import type { DeliveryGaveUp } from "./delivery-queue.js";

export interface GaveUpHandlerDeps {
  nc: NatsConnection;
  logger: Logger;
}

/** A notification that used up its attempts: logged, and announced as `vmbs.evt.notify.<host>.failed`. */
export function createGaveUpHandler(deps: GaveUpHandlerDeps): (g: DeliveryGaveUp) => void {
  const { logger } = deps;
  const announceGaveUp = async (g: DeliveryGaveUp): Promise<void> => {
    const n = g.job.notification;
    const payload: NotifyFailedEvent = {
      type: "failed",
      host: n.host,
      ...(n.domain ? { domain: n.domain } : {}),
      targetId: g.target.id,
      target: g.target.label,
      eventSubject: g.job.eventSubject,
      attempts: g.attempts,
      reason: g.reason,
      at: new Date().toISOString(),
    };
    const subject = subjects.evt.notify(n.host, "failed");
    await publishJson(deps.nc, subject, payload, eventMessageId(subject, g.jobId));
  };
  return (g) => {
    logger.error({ target: g.target.label, eventSubject: g.job.eventSubject, attempts: g.attempts, reason: g.reason }, "notification gave up");
    void announceGaveUp(g).catch((err: unknown) => logger.error({ err, target: g.target.label }, "could not announce a notification that gave up"));
  };
}

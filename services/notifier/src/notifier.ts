import { consumeDurable, notifierDurable, publishJson, type JsMsg, type NatsConnection } from "@vmbs/bus";
import { eventMessageId, subjects, type NotifyFailedEvent, type NotifyTarget } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { createBackupWatch, type BackupWatch } from "./backup-watch.js";
import { createDigestCollector } from "./digest-collector.js";
import { Redis } from "ioredis";
import { createDeliveryQueue, redisOptions, type DeliveryGaveUp, type DeliveryQueueOptions } from "./delivery-queue.js";
import { matchesFilter } from "./match-target.js";
import { parseEvent } from "@vmbs/contracts";
import { renderEvent } from "./render-event.js";
import { createSender, type Sender } from "./send-notification.js";

export interface NotifierDeps {
  nc: NatsConnection;
  targets: NotifyTarget[];
  /** REDIS_URL of the delivery queue. */
  redisUrl: string;
  sshOptions: string[];
  unraidHost: string;
  logger: Logger;
  /** Delivery tuning (tests use short delays); defaults: 10 attempts from 10 s doubling, 1 message/s per target. */
  delivery?: Pick<DeliveryQueueOptions, "attempts" | "retryBaseMs" | "rateMs">;
  /** Per-attempt timeout of a send. Default 20 s. */
  sendTimeoutMs?: number;
  /** Stale-backup alarm (NOTIFY_STALE_HOURS in ms); 0 = off. Default off. */
  staleMs?: number;
  /** Between two stale-backup checks. Default 60 s. */
  watchIntervalMs?: number;
}

export interface Notifier {
  stop(): Promise<void>;
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

/**
 * Reads every event through the durable `notifier` consumer and enqueues one delivery job per matching target.
 * An event is acked only once Redis holds its jobs, so a restart of NATS, Redis or the notifier loses nothing;
 * the jobs' ids are derived from (event, target), so a redelivered event notifies nobody twice.
 */
export async function startNotifier(deps: NotifierDeps): Promise<Notifier> {
  const logger = deps.logger.child({ service: "notifier" });
  const senders = new Map<string, Sender>(
    deps.targets.map((t) => [t.id, createSender(t, { sshOptions: deps.sshOptions, unraidHost: deps.unraidHost, timeoutMs: deps.sendTimeoutMs })]),
  );

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

  const queue = createDeliveryQueue({
    redisUrl: deps.redisUrl,
    targets: deps.targets,
    senders,
    ...deps.delivery,
    onGaveUp: (g) => {
      logger.error({ target: g.target.label, eventSubject: g.job.eventSubject, attempts: g.attempts, reason: g.reason }, "notification gave up");
      void announceGaveUp(g).catch((err: unknown) => logger.error({ err, target: g.target.label }, "could not announce a notification that gave up"));
    },
    onError: (err, target) => logger.warn({ err, target: target?.label }, "notification delivery problem"),
    onSent: (target, jobId) => logger.info({ target: target.label, jobId }, "notification sent"),
  });

  const watch: BackupWatch | undefined = deps.staleMs
    ? createBackupWatch({ nc: deps.nc, redisUrl: deps.redisUrl, staleMs: deps.staleMs, intervalMs: deps.watchIntervalMs, logger })
    : undefined;

  // Runs are summarized only when some target wants the digest.
  const digestRedis = deps.targets.some((t) => t.filter.digest) ? new Redis({ ...redisOptions(deps.redisUrl), maxRetriesPerRequest: 1 }) : undefined;
  digestRedis?.on("error", (err) => logger.warn({ err }, "digest store problem"));
  const digests = digestRedis ? createDigestCollector(deps.nc, digestRedis, logger) : undefined;

  const closeStores = async (): Promise<void> => {
    await watch?.stop();
    digestRedis?.disconnect();
    await queue.close();
  };
  // Only infrastructure trouble (Redis down) makes a retry: the durable never gives an event up (maxDeliver -1).
  const consumer = await consumeDurable(deps.nc, {
    ...notifierDurable,
    onError: (err, msg) => logger.warn({ err, subject: msg?.subject }, "event not taken yet, retrying"),
    handler: async (msg) => {
      // A malformed event fails the same way on every delivery: retrying it would only hold a slot forever.
      const parsed = parseEvent(msg.subject, msg.data);
      if (!parsed.ok) {
        logger.warn({ subject: msg.subject, reason: parsed.reason }, "event refused by its contract; dropped");
        return "term";
      }
      const event = parsed.value;
      const n = renderEvent(msg.subject, event)!; // parseEvent accepted the subject
      // A notification about a target that gave up is not sent to that same target (it would loop).
      const skipTarget = n.service === "notify" ? event.targetId : undefined;
      if (watch && n.service === "backup" && n.type === "completed" && n.domain) await watch.recordCompleted(n.host, n.domain, String(event.at));
      await digests?.observe(n, event);
      const id = deliveryIdentity(msg, event);
      for (const target of deps.targets) {
        if (target.id === skipTarget || !matchesFilter(target.filter, n)) continue;
        await queue.enqueue(id, target, { notification: n, eventSubject: msg.subject, event });
      }
      return "ack";
    },
  }).catch(async (err: unknown) => {
    // No consumer (e.g. NATS refused it): leave no Redis connection or timer behind.
    await closeStores();
    throw err;
  });
  logger.info({ targets: deps.targets.map((t) => t.label) }, "notifier started");

  return {
    async stop() {
      await consumer.stop();
      await closeStores();
    },
  };
}

import { consumeDurable, notifierDurable, type NatsConnection } from "@vmbs/bus";
import type { NotifyTarget } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { createDigestCollector } from "./digest-collector.js";
import { Redis } from "ioredis";
import { createDeliveryQueue, redisOptions, type DeliveryQueueOptions } from "./delivery-queue.js";
import { createEventHandler } from "./handle-event.js";
import { createGaveUpHandler } from "./handle-gave-up.js";
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
}

export interface NotifierHandle {
  stop(): Promise<void>;
}

/**
 * Reads every event through the durable `notifier` consumer and enqueues one delivery job per matching target.
 * An event is acked only once Redis holds its jobs, so a restart of NATS, Redis or the notifier loses nothing;
 * the jobs' ids are derived from (event, target), so a redelivered event notifies nobody twice.
 */
export async function startNotifier(deps: NotifierDeps): Promise<NotifierHandle> {
  const logger = deps.logger.child({ service: "notifier" });
  const senders = new Map<string, Sender>(
    deps.targets.map((t) => [t.id, createSender(t, { sshOptions: deps.sshOptions, unraidHost: deps.unraidHost, timeoutMs: deps.sendTimeoutMs })]),
  );

  const queue = createDeliveryQueue({
    redisUrl: deps.redisUrl,
    targets: deps.targets,
    senders,
    ...deps.delivery,
    onGaveUp: createGaveUpHandler({ nc: deps.nc, logger }),
    onError: (err, target) => logger.warn({ err, target: target?.label }, "notification delivery problem"),
    onSent: (target, jobId) => logger.info({ target: target.label, jobId }, "notification sent"),
  });

  // Runs are summarized only when some target wants the digest.
  const digestRedis = deps.targets.some((t) => t.filter.digest) ? new Redis({ ...redisOptions(deps.redisUrl), maxRetriesPerRequest: 1 }) : undefined;
  digestRedis?.on("error", (err) => logger.warn({ err }, "digest store problem"));
  const digests = digestRedis ? createDigestCollector(deps.nc, digestRedis, logger) : undefined;

  const closeStores = async (): Promise<void> => {
    digestRedis?.disconnect();
    await queue.close();
  };
  // Only infrastructure trouble (Redis down) makes a retry: the durable never gives an event up (maxDeliver -1).
  const consumer = await consumeDurable(deps.nc, {
    ...notifierDurable,
    onError: (err, msg) => logger.warn({ err, subject: msg?.subject }, "event not taken yet, retrying"),
    handler: createEventHandler({ targets: deps.targets, queue, digests, logger }),
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

import { createHash } from "node:crypto";
import { Queue, Worker, type Job } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";
import type { NotifyTarget } from "@vmbs/contracts";
import { redactUrl } from "@vmbs/logger";
import type { Notification } from "./render-event.js";
import type { Sender } from "./send-notification.js";

/** What one delivery job carries: the rendered notification, the original event and its subject. */
export interface DeliveryJob {
  notification: Notification;
  eventSubject: string;
  event: unknown;
}

/** A delivery that gave up after its last attempt. */
export interface DeliveryGaveUp {
  target: NotifyTarget;
  jobId: string;
  job: DeliveryJob;
  attempts: number;
  reason: string;
}

export interface DeliveryQueueOptions {
  /** REDIS_URL: `redis://…`, `rediss://…` or `unix:///path/to/socket`. */
  redisUrl: string;
  targets: NotifyTarget[];
  senders: Map<string, Sender>;
  /** Attempts per job. Default 10 (with the default base delay: retries for about 85 minutes). */
  attempts?: number;
  /** First retry delay; doubles with each attempt. Default 10 s. */
  retryBaseMs?: number;
  /** At most one message per target per this many ms (chat services treat bursts as spam). Default 1000. */
  rateMs?: number;
  onGaveUp: (g: DeliveryGaveUp) => void;
  onError?: (err: unknown, target?: NotifyTarget) => void;
  onSent?: (target: NotifyTarget, jobId: string) => void;
}

export interface DeliveryQueue {
  /** Enqueues one job for (event, target); resolves once Redis holds it. A job id seen before is a no-op. */
  enqueue(eventId: string, target: NotifyTarget, job: DeliveryJob): Promise<string>;
  close(): Promise<void>;
}

/** The job id of (event, target): the same event never makes two jobs for one target (BullMQ ids: no `:`). */
function deliveryJobId(eventId: string, targetId: string): string {
  return createHash("sha256").update(`${eventId}\n${targetId}`).digest("hex").slice(0, 40);
}

/** Node's URL parser, refusing without its TypeError: that carries the whole URL (`input`) into any log of it. */
function parseRedisUrl(redisUrl: string): URL {
  try {
    return new URL(redisUrl);
  } catch {
    throw new Error(`REDIS_URL ${redactUrl(redisUrl)} is not a valid URL (percent-encode special characters of the password)`);
  }
}

/** ioredis options for a REDIS_URL; `unix:///path` is a unix socket. */
export function redisOptions(redisUrl: string): RedisOptions {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true };
  if (redisUrl.startsWith("unix://")) return { ...base, path: redisUrl.slice("unix://".length) };
  const u = parseRedisUrl(redisUrl);
  return {
    ...base,
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

const prefix = "vmbs";
const keepForSeconds = 7 * 24 * 3600;

/**
 * One BullMQ queue and worker per target: a slow or dead target delays only itself, and the limiter paces each
 * target on its own. Completed and failed jobs are kept 7 days, so a redelivered event does not notify twice.
 */
export function createDeliveryQueue(o: DeliveryQueueOptions): DeliveryQueue {
  const options = redisOptions(o.redisUrl);
  // Producer: fail fast while Redis is down, so the event is naked and comes back (the worker waits instead).
  const producer = new Redis({ ...options, maxRetriesPerRequest: 1 });
  const workerConnection = new Redis(options);
  producer.on("error", (err) => o.onError?.(err));
  workerConnection.on("error", (err) => o.onError?.(err));
  const attempts = o.attempts ?? 10;
  const queues = new Map<string, Queue<DeliveryJob>>();
  const workers: Worker<DeliveryJob>[] = [];
  for (const target of o.targets) {
    const name = `notify-${target.id}`;
    const queue = new Queue<DeliveryJob>(name, { connection: producer, prefix });
    queue.on("error", (err) => o.onError?.(err, target));
    queues.set(target.id, queue);
    const send = o.senders.get(target.id);
    if (!send) throw new Error(`no sender for ${target.label}`);
    const worker = new Worker<DeliveryJob>(
      name,
      async (job: Job<DeliveryJob>) => {
        await send(job.data.notification, job.data.event);
      },
      { connection: workerConnection, prefix, concurrency: 1, limiter: { max: 1, duration: o.rateMs ?? 1000 } },
    );
    worker.on("error", (err) => o.onError?.(err, target));
    worker.on("completed", (job) => o.onSent?.(target, String(job.id)));
    worker.on("failed", (job, err) => {
      if (!job) return;
      if (job.attemptsMade >= (job.opts.attempts ?? 1))
        o.onGaveUp({ target, jobId: String(job.id), job: job.data, attempts: job.attemptsMade, reason: err.message });
      else o.onError?.(err, target);
    });
    workers.push(worker);
  }
  return {
    async enqueue(eventId, target, job) {
      const queue = queues.get(target.id);
      if (!queue) throw new Error(`unknown target ${target.label}`);
      const jobId = deliveryJobId(eventId, target.id);
      await queue.add("deliver", job, {
        jobId,
        attempts,
        backoff: { type: "exponential", delay: o.retryBaseMs ?? 10_000 },
        removeOnComplete: { age: keepForSeconds },
        removeOnFail: { age: keepForSeconds },
      });
      return jobId;
    },
    async close() {
      await Promise.allSettled(workers.map((w) => w.close()));
      await Promise.allSettled([...queues.values()].map((q) => q.close()));
      producer.disconnect();
      workerConnection.disconnect();
    },
  };
}

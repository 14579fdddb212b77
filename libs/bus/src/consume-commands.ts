import type { NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";

/** What to do with a message once its handler is done. */
export type Disposition = "ack" | "retry" | "term";

export interface CommandContext {
  /** Keeps a long run alive: call it at least every `ackWaitMs`. The loop also calls it on a timer. */
  working(): void;
  /** Aborted when the loop is stopping; long handlers should cancel their work. */
  signal: AbortSignal;
  deliveryCount: number;
}

export interface ConsumeCommandsOptions {
  stream: string;
  /** Durable consumer name; one per (verb, host). */
  durable: string;
  filterSubject: string;
  handler: (msg: JsMsg, ctx: CommandContext) => Promise<Disposition>;
  /** Messages handled at once. Default 4. */
  concurrency?: number;
  /** Redelivery after this long without ack or working(). Default 60 s. */
  ackWaitMs?: number;
  /** Deliveries before JetStream gives up on a message. Default 5. */
  maxDeliver?: number;
  /** Delay before a `retry` disposition is redelivered. Default 5 s. */
  retryDelayMs?: number;
  /** Called with errors the loop itself hits (handler rejections are `retry`). */
  onError?: (err: unknown, msg?: JsMsg) => void;
  /** Where a NEW durable starts in the stream (an existing one keeps its own). Default all. */
  deliverPolicy?: DeliverPolicy;
}

export interface CommandConsumer {
  /** Stops taking messages, aborts in-flight handlers and waits for them to settle. */
  stop(): Promise<void>;
}

/**
 * A durable pull consumer that runs a handler per message, at most `concurrency` at once, keeping long runs
 * alive with `working()` and settling each message with ack / nak(delay) / term.
 */
export async function consumeCommands(nc: NatsConnection, o: ConsumeCommandsOptions): Promise<CommandConsumer> {
  const concurrency = o.concurrency ?? 4;
  const ackWaitMs = o.ackWaitMs ?? 60_000;
  const jsm = await jetstreamManager(nc);
  const existing = await jsm.consumers.info(o.stream, o.durable).catch(() => undefined);
  const config = {
    durable_name: o.durable,
    filter_subject: o.filterSubject,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWaitMs * 1_000_000,
    max_deliver: o.maxDeliver ?? 5,
    max_ack_pending: concurrency,
    deliver_policy: existing?.config.deliver_policy ?? o.deliverPolicy ?? DeliverPolicy.All,
  };
  if (existing) await jsm.consumers.update(o.stream, o.durable, config);
  else await jsm.consumers.add(o.stream, config);
  const consumer = await jetstream(nc).consumers.get(o.stream, o.durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: concurrency });
  const stopping = new AbortController();
  const inFlight = new Set<Promise<void>>();

  const handle = async (msg: JsMsg): Promise<void> => {
    const keepAlive = setInterval(() => msg.working(), Math.max(250, ackWaitMs / 3));
    try {
      const ctx: CommandContext = { working: () => msg.working(), signal: stopping.signal, deliveryCount: msg.info.deliveryCount };
      const disposition = await o.handler(msg, ctx).catch((err: unknown) => {
        o.onError?.(err, msg);
        return "retry" as const;
      });
      if (disposition === "ack") msg.ack();
      else if (disposition === "term") msg.term();
      else msg.nak(o.retryDelayMs ?? 5_000);
    } finally {
      clearInterval(keepAlive);
    }
  };

  const loop = (async () => {
    for await (const msg of messages) {
      const task = handle(msg);
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
    }
  })().catch((err: unknown) => o.onError?.(err));

  return {
    async stop() {
      stopping.abort();
      messages.stop();
      await loop;
      await Promise.allSettled([...inFlight]);
    },
  };
}

import type { NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { VmbsError, subjectMatches } from "@vmbs/contracts";
import { isPermissionViolation } from "./connect-bus.js";
import { isRedirectedStoredMessage } from "./forged-delivery.js";

/** What to do with a message once its handler is done. */
export type Disposition = "ack" | "retry" | "term";

export interface CommandContext {
  /** Keeps a long run alive: call it at least every `ackWaitMs`. The loop also calls it on a timer. */
  working(): void;
  /** Aborted when the loop is stopping; long handlers should cancel their work. */
  signal: AbortSignal;
  deliveryCount: number;
}

/** A durable pull consumer: what set-up makes and a service binds to (see durables.ts). */
export interface DurableSpec {
  stream: string;
  /** Durable consumer name; one per (verb, host). */
  durable: string;
  filterSubject: string;
  /** Messages handled at once (the durable's max_ack_pending). Default 4. */
  concurrency?: number;
  /** Redelivery after this long without ack or working(). Default 60 s. */
  ackWaitMs?: number;
  /** Deliveries before JetStream gives up on a message. Default 5. */
  maxDeliver?: number;
  /** Where a NEW durable starts in the stream (an existing one keeps its own). Default all. */
  deliverPolicy?: DeliverPolicy;
}

export interface ConsumeDurableOptions extends DurableSpec {
  handler: (msg: JsMsg, ctx: CommandContext) => Promise<Disposition>;
  /** Delay before a `retry` disposition is redelivered. Default 5 s. */
  retryDelayMs?: number;
  /** Called with errors the loop itself hits (handler rejections are `retry`), and with refused messages. */
  onError?: (err: unknown, msg?: JsMsg) => void;
}

export interface DurableConsumer {
  /** Stops taking messages, aborts in-flight handlers and waits for them to settle. */
  stop(): Promise<void>;
}

/** A durable that does not exist and that this client may not create: set-up has not run for it. */
export class DurableMissingError extends VmbsError {
  constructor(readonly stream: string, readonly durable: string, options?: ErrorOptions) {
    super("misconfigured", `the durable consumer ${durable} on ${stream} does not exist and this role may not create it — run vmbs start or vmbs bus setup with the operator's credential first`, options);
  }
}

/**
 * A message whose subject is not one the consumer was made for (delivered to its inbox by someone else), or that
 * is another stream's stored message a client had the server publish here (see forged-delivery.ts).
 */
export class ForeignMessageError extends VmbsError {
  constructor(readonly subject: string, readonly filterSubject: string) {
    super("refused", `refused a message on ${subject}: this consumer takes only what was published to ${filterSubject}`);
  }
}

/**
 * Creates the durable of `spec`, or brings an existing one to it. A client that may not (a role, roles.ts) binds
 * to the durable as set-up made it; a missing one is then a {@link DurableMissingError}.
 */
export async function ensureDurable(jsm: JetStreamManager, spec: DurableSpec): Promise<void> {
  const concurrency = spec.concurrency ?? 4;
  const existing = await jsm.consumers.info(spec.stream, spec.durable).catch(() => undefined);
  const config = {
    durable_name: spec.durable,
    filter_subject: spec.filterSubject,
    ack_policy: AckPolicy.Explicit,
    ack_wait: (spec.ackWaitMs ?? 60_000) * 1_000_000,
    max_deliver: spec.maxDeliver ?? 5,
    max_ack_pending: concurrency,
    deliver_policy: existing?.config.deliver_policy ?? spec.deliverPolicy ?? DeliverPolicy.All,
  };
  try {
    if (!existing) await jsm.consumers.add(spec.stream, config);
    else if (Object.entries(config).some(([k, v]) => existing.config[k as keyof typeof existing.config] !== v)) await jsm.consumers.update(spec.stream, spec.durable, config);
  } catch (err) {
    if (!isPermissionViolation(err)) throw err;
    if (!existing) throw new DurableMissingError(spec.stream, spec.durable, { cause: err });
  }
}

/**
 * A durable pull consumer that runs a handler per message, at most `concurrency` at once, keeping long runs
 * alive with `working()` and settling each message with ack / nak(delay) / term. A message whose subject is not
 * the consumer's own is terminated unseen by the handler.
 */
export async function consumeDurable(nc: NatsConnection, o: ConsumeDurableOptions): Promise<DurableConsumer> {
  const concurrency = o.concurrency ?? 4;
  const ackWaitMs = o.ackWaitMs ?? 60_000;
  await ensureDurable(await jetstreamManager(nc), o);
  const consumer = await jetstream(nc).consumers.get(o.stream, o.durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: concurrency });
  const stopping = new AbortController();
  const inFlight = new Set<Promise<void>>();

  const handle = async (msg: JsMsg): Promise<void> => {
    if (!subjectMatches(o.filterSubject, msg.subject) || isRedirectedStoredMessage(msg.headers)) {
      o.onError?.(new ForeignMessageError(msg.subject, o.filterSubject), msg);
      msg.term();
      return;
    }
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

import { mkdir, open, readFile, rename, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";

/** One event on its way to a stream: `msgId` becomes its Nats-Msg-Id and is fixed before the first attempt. */
export interface OutboxEvent {
  subject: string;
  msgId: string;
  payload: unknown;
}

/** Sends one event; rejects when it was not stored (the outbox retries it). */
export type OutboxSender = (event: OutboxEvent, timeoutMs: number) => Promise<void>;

export interface EventOutboxOptions {
  /** Directory of the outbox file (`outbox.jsonl`), created with mode 0700. One open outbox per directory. */
  dir: string;
  send: OutboxSender;
  /** Timeout of one publish attempt. Default 5 s. */
  attemptTimeoutMs?: number;
  /** Timeout of the direct attempt of an event that finds the outbox empty (then it goes to disk). Default 2 s. */
  directTimeoutMs?: number;
  /** First and longest pause between failed attempts (doubling). Defaults 250 ms and 5 s. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** The file is rewritten with only the unsent events after this many sends. Default 256. */
  compactAfter?: number;
  /** A failed attempt (`attempt` counts the failures of this event in a row) or an unreadable line at open. */
  onError?: (err: unknown, event: OutboxEvent | undefined, attempt: number) => void;
}

/**
 * Events that must not be lost when the bus is down. `enqueue` resolves once the event is stored: by the stream
 * (an event that finds nothing pending is sent straight away and acked), else on disk (fsync), from where a
 * single pump publishes them in order, retrying with backoff, and marks each one sent. The direct path spares
 * two fsyncs per event, which right after the engine wrote a backup cost tens of ms each. Re-publishing an
 * event (after a crash between the publish and its mark, or an explicit re-announce) reuses its message id,
 * so the stream's duplicate window drops the repeat and a subscriber can drop it by Nats-Msg-Id after that.
 */
export interface EventOutbox {
  /** Appends the event durably and schedules its publication; a no-op when the same msgId is still pending. */
  enqueue(event: OutboxEvent): Promise<void>;
  /** Events not yet confirmed by the stream. */
  pending(): number;
  /** Resolves true once nothing is pending, false when `timeoutMs` passes first. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Cuts a backoff pause short, e.g. when the connection is back. */
  wake(): void;
  /** Tries to publish for up to `drainMs` (default 0), then stops; what is left is published at the next open. */
  close(drainMs?: number): Promise<void>;
}

/** Publishes into JetStream with the event's Nats-Msg-Id and waits for the stream's ack. */
export function jetStreamSender(nc: NatsConnection): OutboxSender {
  const js = jetstream(nc);
  return async (event, timeoutMs) => {
    await js.publish(event.subject, JSON.stringify(event.payload), { msgID: event.msgId, timeout: timeoutMs });
  };
}

/** A line of the file: an event appended, or the mark that the event with this id was stored by the stream. */
type Line = { event: OutboxEvent } | { sent: string };

const FILE = "outbox.jsonl";

/** Opens the outbox in `dir`, takes up what an earlier process left unsent, and starts publishing it. */
export async function openEventOutbox(o: EventOutboxOptions): Promise<EventOutbox> {
  const attemptTimeoutMs = o.attemptTimeoutMs ?? 5_000;
  const directTimeoutMs = o.directTimeoutMs ?? 2_000;
  const minBackoffMs = o.minBackoffMs ?? 250;
  const maxBackoffMs = o.maxBackoffMs ?? 5_000;
  const compactAfter = o.compactAfter ?? 256;
  const path = join(o.dir, FILE);
  await mkdir(o.dir, { recursive: true, mode: 0o700 });

  const queue: OutboxEvent[] = await readPending(path, o.onError);
  // Start from a compact file: the leftovers only.
  await rewrite(o.dir, path, queue);
  let file: FileHandle = await open(path, "a", 0o600);
  let sentSinceCompaction = 0;

  // Every file operation runs in this chain, so appends, marks and the rewrite never interleave.
  let io: Promise<unknown> = Promise.resolve();
  const serial = <T>(op: () => Promise<T>): Promise<T> => {
    const next = io.then(op);
    io = next.catch(() => undefined);
    return next;
  };
  const append = (line: Line) =>
    serial(async () => {
      await file.appendFile(`${JSON.stringify(line)}\n`);
      await file.datasync();
    });
  const compact = () =>
    serial(async () => {
      await file.close();
      await rewrite(o.dir, path, queue);
      file = await open(path, "a", 0o600);
      sentSinceCompaction = 0;
    });

  let closed = false;
  const closing = new AbortController();
  let nap: AbortController | undefined;
  let pumping: Promise<void> | undefined;
  const drainWaiters = new Set<() => void>();
  const settleDrains = () => {
    if (queue.length > 0) return;
    for (const done of drainWaiters) done();
    drainWaiters.clear();
  };

  const pumpLoop = async (): Promise<void> => {
    let failures = 0;
    while (queue.length > 0 && !closed) {
      const event = queue[0]!;
      try {
        await o.send(event, attemptTimeoutMs);
      } catch (err) {
        failures += 1;
        o.onError?.(err, event, failures);
        const backoff = Math.min(maxBackoffMs, minBackoffMs * 2 ** (failures - 1));
        nap = new AbortController();
        await sleep(backoff, undefined, { signal: AbortSignal.any([nap.signal, closing.signal]) }).catch(() => undefined);
        continue;
      }
      failures = 0;
      queue.shift();
      await append({ sent: event.msgId });
      sentSinceCompaction += 1;
      if (sentSinceCompaction >= compactAfter) await compact();
    }
    settleDrains();
  };
  const pump = () => {
    pumping ??= pumpLoop().finally(() => {
      pumping = undefined;
      // An event enqueued while the loop was finishing its last mark.
      if (queue.length > 0 && !closed) pump();
    });
  };
  pump();

  const drain = (timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if (queue.length === 0) return resolve(true);
      const timer = setTimeout(() => {
        drainWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      drainWaiters.add(done);
    });

  return {
    async enqueue(event) {
      if (closed) throw new Error("the event outbox is closed");
      if (queue.some((e) => e.msgId === event.msgId)) return;
      // Nothing pending to keep order behind: the stream's ack makes the disk copy unnecessary. After a failure
      // the pump holds the queue, so later events go to disk at once until it has drained.
      if (queue.length === 0 && !pumping) {
        try {
          return await o.send(event, directTimeoutMs);
        } catch (err) {
          o.onError?.(err, event, 1);
        }
        if (closed) throw new Error("the event outbox is closed");
      }
      // In the queue only once it is on disk: a mark must never precede its event in the file.
      await append({ event });
      queue.push(event);
      pump();
    },
    pending: () => queue.length,
    drain,
    wake: () => nap?.abort(),
    async close(drainMs = 0) {
      if (closed) return;
      if (drainMs > 0) await drain(drainMs);
      closed = true;
      closing.abort();
      await pumping;
      await serial(() => file.close());
    },
  };
}

/** The events of the file without a sent mark, in file order. A torn last line (a crash mid-append) is skipped. */
async function readPending(path: string, onError: EventOutboxOptions["onError"]): Promise<OutboxEvent[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const events = new Map<string, OutboxEvent>();
  for (const raw of text.split("\n")) {
    if (raw === "") continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch (err) {
      onError?.(new Error(`skipping an unreadable outbox line (${raw.length} bytes)`, { cause: err }), undefined, 0);
      continue;
    }
    if ("sent" in line) events.delete(line.sent);
    else if (line.event && !events.has(line.event.msgId)) events.set(line.event.msgId, line.event);
  }
  return [...events.values()];
}

/** Replaces the file atomically (temp file, fsync, rename, fsync of the directory). */
async function rewrite(dir: string, path: string, events: readonly OutboxEvent[]): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(events.map((event) => `${JSON.stringify({ event } satisfies Line)}\n`).join(""));
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}

/** Makes a rename or a new file in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

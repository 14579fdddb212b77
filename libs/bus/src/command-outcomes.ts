import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { buckets } from "@vmbs/contracts";
import type { Disposition } from "./consume-durable.js";
import { fsyncDir, type OutboxEvent } from "./event-outbox.js";
import { openBucket, type OpenBucket } from "./kv-buckets.js";

/** How long an outcome is kept (local file and KV entry): a command redelivered later than this runs again. */
const defaultOutcomeMaxAgeMs = 7 * 86_400_000;

/** What is known of one command: recorded `started` before any work, `done` with its disposition before the ack. */
export interface CommandRecord {
  identity: string;
  subject: string;
  state: "started" | "done";
  /** The process instance that ran it; another owner on a `started` record means that run was interrupted. */
  owner: string;
  startedAt: string;
  doneAt?: string;
  disposition?: Exclude<Disposition, "retry">;
  /** Every event the command announced, in order, with its message id: re-announced on a redelivery. */
  events: OutboxEvent[];
}

/**
 * A command's identity: its Nats-Msg-Id when the publisher set one (the same request published twice is one
 * command), else its stream and stream sequence plus the stored time, so a recreated stream that reuses a
 * sequence number is not mistaken for the old one.
 */
export function commandIdentity(msg: Pick<JsMsg, "headers" | "info">): string {
  const msgId = msg.headers?.get("Nats-Msg-Id");
  if (msgId) return msgIdIdentity(msgId);
  return `seq:${msg.info.stream}:${msg.info.streamSequence}:${msg.info.timestampNanos}`;
}

/** The identity of a command published with Nats-Msg-Id `msgId`: a publisher finds its outcome by it. */
export function msgIdIdentity(msgId: string): string {
  return `msg-id:${msgId}`;
}

/** `<host>.<first 32 hex digits of sha256(identity)>`: KV-safe whatever the identity holds. */
export function commandOutcomeKey(host: string, identity: string): string {
  return `${host}.${createHash("sha256").update(identity, "utf8").digest("hex").slice(0, 32)}`;
}

/** The outcome bucket: one key per command, history 1, entries expire after `maxAgeMs`. */
export async function openCommandOutcomesBucket(nc: NatsConnection, maxAgeMs = defaultOutcomeMaxAgeMs): Promise<OpenBucket> {
  return openBucket(nc, buckets.commandOutcomes, { ttlMs: maxAgeMs });
}

export interface CommandOutcomeStoreOptions {
  /** Directory of the local copies (one `<key>.json` each), created with mode 0700. */
  dir: string;
  /** The shared copy in NATS KV (see {@link openCommandOutcomesBucket}); written best effort. */
  kv?: OpenBucket;
  /** Local copies older than this are deleted (at open, then at most hourly). Default 7 days. */
  maxAgeMs?: number;
  /** How long a KV read or write may take before it is given up. Default 3 s. */
  kvTimeoutMs?: number;
  /** A KV write or read that failed (NATS down): the local copy still holds the record. */
  onError?: (err: unknown, key: string) => void;
}

export interface CommandOutcomeStore {
  /** The local copy, else the KV entry (a state dir that was lost or moved), else undefined. */
  get(key: string): Promise<CommandRecord | undefined>;
  /** Writes the local copy durably (fsync before it resolves); `shared` also writes KV, best effort. */
  put(key: string, record: CommandRecord, shared: boolean): Promise<void>;
}

/**
 * Outcomes of commands, kept twice: a local file written with fsync before the ack (when NATS is down neither
 * a KV write nor the ack gets through, and the redelivery comes after the restart) and a KV entry for every
 * other reader.
 */
export async function openCommandOutcomeStore(o: CommandOutcomeStoreOptions): Promise<CommandOutcomeStore> {
  const maxAgeMs = o.maxAgeMs ?? defaultOutcomeMaxAgeMs;
  const kvTimeoutMs = o.kvTimeoutMs ?? 3_000;
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  let prunedAt = 0;
  const prune = async () => {
    prunedAt = Date.now();
    for (const name of await readdir(o.dir)) {
      const path = join(o.dir, name);
      const old = name.endsWith(".tmp") || prunedAt - (await stat(path).catch(() => ({ mtimeMs: prunedAt }))).mtimeMs > maxAgeMs;
      if (old) await rm(path, { force: true });
    }
  };
  await prune();
  const fileOf = (key: string) => join(o.dir, `${key}.json`);
  const bounded = <T>(op: Promise<T>): Promise<T> => {
    // The late settlement of an operation that lost the race must not become an unhandled rejection.
    op.catch(() => undefined);
    return Promise.race([op, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`KV did not answer within ${kvTimeoutMs} ms`)), kvTimeoutMs).unref())]);
  };

  return {
    async get(key) {
      try {
        return JSON.parse(await readFile(fileOf(key), "utf8")) as CommandRecord;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      if (!o.kv) return undefined;
      try {
        // Another host's agent may have had the server store a record here (forged-delivery.ts): not ours.
        const stored = await bounded(o.kv.read(key));
        return stored && !stored.forged ? (JSON.parse(new TextDecoder().decode(stored.value)) as CommandRecord) : undefined;
      } catch (err) {
        o.onError?.(err, key);
        return undefined;
      }
    },
    async put(key, record, shared) {
      // A long-running agent is not reopened for weeks: prune as it goes, at most hourly.
      if (Date.now() - prunedAt > 3_600_000) await prune();
      const path = fileOf(key);
      const handle = await open(`${path}.tmp`, "w", 0o600);
      try {
        await handle.writeFile(JSON.stringify(record));
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await rename(`${path}.tmp`, path);
      await fsyncDir(o.dir);
      if (shared && o.kv) await bounded(o.kv.kv.put(key, JSON.stringify(record))).catch((err: unknown) => o.onError?.(err, key));
    },
  };
}

import type { NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type MsgRequest, type StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { buckets } from "@vmbs/contracts";
import { isPermissionViolation } from "./connect-bus.js";
import { isRedirectedStoredMessage } from "./forged-delivery.js";
import { assertReplicas } from "./stream-replicas.js";

/*
 * The KV buckets' streams, made by set-up with this file's limits (issue 14): a value, a bucket and an entry's age
 * are bounded, and the rollup header is refused — with it, one role's write to its own key would purge every
 * host's keys of the bucket (`Nats-Rollup: all`). Direct gets are off: the server would answer one with a stored
 * value on any reply subject, the JetStream API's among them (roles.ts, kvRead); keys are read by message gets.
 * Roles may neither inspect nor create a bucket (roles.ts); they bind to what set-up made.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const day = 86_400_000;

/** Limits of one bucket. */
export interface BucketLimits {
  /** An entry expires this long after its last write (the lease length for lease buckets). */
  ttlMs: number;
  /** Largest value (with its headers) a write may carry. */
  maxValueBytes: number;
  /** The whole bucket; further writes are refused (discard new), nothing stored is dropped. */
  maxBytes: number;
}

/** The limits of the product's buckets, and of any other bucket opened here (tests). */
const bucketLimits: Readonly<Record<string, BucketLimits>> = {
  // An inventory of several hundred domains fits; the entry is gone 90 s after the agent's last heartbeat.
  [buckets.hosts]: { ttlMs: 90_000, maxValueBytes: 256 * KiB, maxBytes: 64 * MiB },
  [buckets.chainLeases]: { ttlMs: 30_000, maxValueBytes: 1 * KiB, maxBytes: 16 * MiB },
  // The boot id a host last saw: a host off for longer merely counts as a first start.
  [buckets.agentState]: { ttlMs: 90 * day, maxValueBytes: 4 * KiB, maxBytes: 16 * MiB },
  [buckets.agentPresence]: { ttlMs: 15_000, maxValueBytes: 1 * KiB, maxBytes: 1 * MiB },
  [buckets.commandOutcomes]: { ttlMs: 7 * day, maxValueBytes: 16 * KiB, maxBytes: 256 * MiB },
  // A domain's status record with its recent runs; a host or domain gone for 90 days is forgotten.
  [buckets.status]: { ttlMs: 90 * day, maxValueBytes: 64 * KiB, maxBytes: 128 * MiB },
};
const otherBucket: BucketLimits = { ttlMs: 7 * day, maxValueBytes: 16 * KiB, maxBytes: 16 * MiB };

/** The limits of `bucket`, with `ttlMs` overridden (a test's short lease). */
export function limitsOf(bucket: string, ttlMs?: number): BucketLimits {
  const limits = bucketLimits[bucket] ?? otherBucket;
  return ttlMs === undefined ? limits : { ...limits, ttlMs };
}

const kvStreamName = (bucket: string): string => `KV_${bucket}`;

/** The stream behind a bucket: what nats.js makes for a KV of history 1, with our limits and no rollups. */
function bucketStreamConfig(bucket: string, limits: BucketLimits, replicas = 1): StreamConfig {
  return {
    name: kvStreamName(bucket),
    subjects: [`$KV.${bucket}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_msgs_per_subject: 1,
    max_msgs: -1,
    max_bytes: limits.maxBytes,
    max_age: limits.ttlMs * 1_000_000,
    max_msg_size: limits.maxValueBytes,
    max_consumers: -1,
    num_replicas: replicas,
    duplicate_window: Math.min(limits.ttlMs, 120_000) * 1_000_000,
    allow_rollup_hdrs: false,
    deny_delete: true,
    deny_purge: false,
    allow_direct: false,
    mirror_direct: false,
    sealed: false,
  } as StreamConfig;
}

/** The fields an existing bucket (made by an older version, or by nats.js's defaults) is brought to. */
function safetyOf(limits: BucketLimits): Partial<StreamConfig> {
  return { allow_rollup_hdrs: false, allow_direct: false, max_msg_size: limits.maxValueBytes, max_bytes: limits.maxBytes };
}

/** An open bucket and the TTL in effect on it. */
export interface OpenBucket {
  kv: KV;
  /** The bucket's TTL: the existing stream's when this client may read it, else the configured one. */
  ttlMs: number;
  /** A key's current value; undefined when there is none or it was deleted. */
  read(key: string): Promise<BucketValue | undefined>;
}

/** A key's current value as stored. */
export interface BucketValue {
  value: Uint8Array;
  revision: number;
  /** Stored there by the server for someone else (forged-delivery.ts): no holder of ours wrote it. */
  forged: boolean;
}

function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * Opens `bucket`. A client allowed to manage streams (the operator's set-up, a server without authorization)
 * creates it when missing (with `replicas`, default 1) and brings an existing one to the safe limits, keeping its
 * TTL; an existing one with another count than a given `replicas` is a StreamReplicasError. A role binds to it.
 */
export async function openBucket(nc: NatsConnection, bucket: string, o: { ttlMs?: number; replicas?: number } = {}): Promise<OpenBucket> {
  const limits = limitsOf(bucket, o.ttlMs);
  const jsm = await jetstreamManager(nc);
  let ttlMs = limits.ttlMs;
  try {
    const name = kvStreamName(bucket);
    const info = await jsm.streams.info(name).catch((err: unknown) => {
      if (isStreamNotFound(err)) return jsm.streams.add(bucketStreamConfig(bucket, limits, o.replicas));
      throw err;
    });
    assertReplicas(info.config, o.replicas);
    if (info.config.max_age > 0) ttlMs = info.config.max_age / 1_000_000;
    const safety = safetyOf(limits);
    if (Object.entries(safety).some(([k, v]) => info.config[k as keyof StreamConfig] !== v)) await jsm.streams.update(name, safety);
  } catch (err) {
    if (!isPermissionViolation(err)) throw err;
  }
  return { kv: await new Kvm(nc).open(bucket, { allow_direct: false }), ttlMs, read: (key) => readKey(jsm, bucket, key) };
}

/** One key's current value: opens and makes no bucket (a read-only look, e.g. the CLI's). */
export async function readBucketKey(nc: NatsConnection, bucket: string, key: string): Promise<BucketValue | undefined> {
  return readKey(await jetstreamManager(nc), bucket, key);
}

async function readKey(jsm: JetStreamManager, bucket: string, key: string): Promise<BucketValue | undefined> {
  const m = await jsm.streams.getMessage(kvStreamName(bucket), { last_by_subj: `$KV.${bucket}.${key}` });
  if (!m) return undefined;
  const operation = m.header.get("KV-Operation");
  if (operation === "DEL" || operation === "PURGE") return undefined;
  return { value: m.data, revision: m.seq, forged: isRedirectedStoredMessage(m.header) };
}

/** One key's current value. */
export interface BucketEntry {
  key: string;
  value: Uint8Array;
  revision: number;
}

/**
 * Every current entry of `bucket`, in write order, read with message gets (`next_by_subj`): listing keys needs no
 * consumer, so no role needs the right to create one.
 */
export async function readBucket(nc: NatsConnection, bucket: string): Promise<BucketEntry[]> {
  return (await readBucketChanges(nc, bucket, 0)).entries;
}

/**
 * The entries of `bucket` written after revision `after` that are still current (as readBucket, which is this from
 * 0), and the last revision read: the `after` of the next call, which then reads only what was written since.
 */
export async function readBucketChanges(nc: NatsConnection, bucket: string, after: number): Promise<{ entries: BucketEntry[]; lastRevision: number }> {
  const jsm = await jetstreamManager(nc);
  const prefix = `$KV.${bucket}.`;
  const entries = new Map<string, BucketEntry>();
  let lastRevision = after;
  for (;;) {
    // nats-server's message get takes next_by_subj as its direct get does (nats.js types it for direct gets only).
    const m = await jsm.streams.getMessage(kvStreamName(bucket), { seq: lastRevision + 1, next_by_subj: `${prefix}>` } as unknown as MsgRequest);
    if (!m) break;
    const key = m.subject.slice(prefix.length);
    const operation = m.header.get("KV-Operation");
    // History 1: a key's newest message replaced its older ones; a delete or purge marker means it is gone, and so
    // does a value the server was made to store there for someone else (forged-delivery.ts).
    if (operation === "DEL" || operation === "PURGE" || isRedirectedStoredMessage(m.header)) entries.delete(key);
    else entries.set(key, { key, value: m.data, revision: m.seq });
    lastRevision = m.seq;
  }
  return { entries: [...entries.values()], lastRevision };
}

import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy, type StreamConfig } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { buckets, streams, subjects } from "@vmbs/contracts";
import { isPermissionViolation } from "./connect-bus.js";
import { limitsOf, openBucket } from "./kv-buckets.js";
import { ensureDurable, type DurableSpec } from "./consume-durable.js";
import { assertReplicas } from "./stream-replicas.js";

const second = 1_000_000_000; // JetStream durations are nanoseconds
const day = 86_400 * second;
const KiB = 1024;
const MiB = 1024 * KiB;

/** Options of the streams, with their defaults (README, "Limits"). */
export interface TopologyOptions {
  /** How long an unconsumed command waits for its agent. Default 1 day. */
  commandMaxAgeNs?: number;
  /** Commands queued at once, all hosts together; more are refused (discard new), none is dropped. Default 100 000. */
  commandMaxMsgs?: number;
  /** How long events are kept for replay. Default 30 days. */
  eventMaxAgeNs?: number;
  /** Size of the event history; the oldest events make room. Default 1 GiB. */
  eventMaxBytes?: number;
  /** Window in which a repeated Nats-Msg-Id is dropped (scheduler replicas firing the same slot). Default 10 min. */
  duplicateWindowNs?: number;
  /** A host entry disappears this long after its agent's last heartbeat. Default 90 s (kv-buckets.ts). */
  hostTtlMs?: number;
  /**
   * Replicas of the streams and buckets made here, and the count existing ones must have (VMBS_STREAM_REPLICAS);
   * durables take their stream's. Unset: made with 1, an existing one's count is not checked (a service on a
   * server without authorization, making what set-up has not).
   */
  replicas?: number;
}

/** Largest command and event (payload and headers): ours are a few hundred bytes; a flood of big ones is refused. */
export const commandMaxBytes = 64 * KiB;
export const eventMaxMsgBytes = 256 * KiB;

function streamConfigs(o: TopologyOptions): (Partial<StreamConfig> & { name: string })[] {
  const duplicate_window = o.duplicateWindowNs ?? 600 * second;
  return [
    {
      name: streams.commands,
      subjects: [subjects.commandsAll],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_age: o.commandMaxAgeNs ?? day,
      max_msgs: o.commandMaxMsgs ?? 100_000,
      max_bytes: 256 * MiB,
      max_msg_size: commandMaxBytes,
      duplicate_window,
      allow_rollup_hdrs: false,
    },
    {
      name: streams.events,
      subjects: [subjects.eventsAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: o.eventMaxAgeNs ?? 30 * day,
      max_bytes: o.eventMaxBytes ?? 1024 * MiB,
      max_msg_size: eventMaxMsgBytes,
      duplicate_window,
      allow_rollup_hdrs: false,
    },
  ];
}

/**
 * Disk the product's streams and buckets reserve with their default limits: a server's JetStream store must hold
 * at least this much, or creating the last of them fails ("insufficient storage resources").
 */
export function reservedStoreBytes(): number {
  const streamBytes = streamConfigs({}).reduce((sum, c) => sum + (c.max_bytes ?? 0), 0);
  return streamBytes + Object.values(buckets).reduce((sum, bucket) => sum + limitsOf(bucket).maxBytes, 0);
}

/** What {@link ensureStreams} did. */
export interface EnsureStreamsResult {
  created: string[];
  updated: string[];
  /** Streams whose config differs from this version's but which this client may not update. */
  drifted: string[];
  /** Streams this client may not even inspect (a role: set-up, run with the operator's credential, owns them). */
  unchecked: string[];
}

/**
 * Creates the missing streams and updates the ones whose config drifted, so the services can start in any order
 * on a server without authorization. With the generated authorization only the operator may (roles.ts): for a role
 * every stream is `unchecked`.
 */
export async function ensureStreams(nc: NatsConnection, o: TopologyOptions = {}): Promise<EnsureStreamsResult> {
  const jsm = await jetstreamManager(nc);
  const result: EnsureStreamsResult = { created: [], updated: [], drifted: [], unchecked: [] };
  for (const config of streamConfigs(o)) {
    const name = config.name;
    let refused = false;
    const info = await jsm.streams.info(name).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
      if (!isPermissionViolation(err)) throw err;
      refused = true;
      return undefined;
    });
    if (refused) {
      result.unchecked.push(name);
      continue;
    }
    if (info) assertReplicas(info.config, o.replicas);
    if (!info) {
      await jsm.streams.add({ ...config, num_replicas: o.replicas ?? 1 });
      result.created.push(name);
    } else if (differs(config, info.config)) {
      try {
        await jsm.streams.update(name, config);
        result.updated.push(name);
      } catch (err) {
        if (!isPermissionViolation(err)) throw err;
        result.drifted.push(name);
      }
    }
  }
  return result;
}

/** True when a field this version sets has another value on the server. */
function differs(wanted: Partial<StreamConfig>, actual: StreamConfig): boolean {
  return Object.entries(wanted).some(([key, value]) => JSON.stringify(actual[key as keyof StreamConfig]) !== JSON.stringify(value));
}

/** What set-up makes: the streams, every bucket, and the durable consumers of the roles given. */
export interface SetUpBusOptions extends TopologyOptions {
  durables: readonly DurableSpec[];
}

/**
 * Set-up, with the operator's credential (`vmbs start` for its own server, `vmbs bus setup` for a fleet): streams,
 * buckets and durables exist with this version's config before any role binds to them (roles may not create
 * either, see @vmbs/contracts roles).
 */
export async function setUpBus(nc: NatsConnection, o: SetUpBusOptions): Promise<EnsureStreamsResult> {
  const result = await ensureStreams(nc, o);
  for (const bucket of Object.values(buckets)) await openBucket(nc, bucket, { ttlMs: bucket === buckets.hosts ? o.hostTtlMs : undefined, replicas: o.replicas });
  const jsm = await jetstreamManager(nc);
  for (const spec of o.durables) await ensureDurable(jsm, spec);
  return result;
}

/** The host inventory bucket; entries expire `hostTtlMs` after their last write (the agent's heartbeat). */
export async function openHostsBucket(nc: NatsConnection, o: TopologyOptions = {}): Promise<KV> {
  return (await openBucket(nc, buckets.hosts, { ttlMs: o.hostTtlMs })).kv;
}

import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy, type StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { buckets, streams, subjects } from "@vmbs/contracts";
import { isPermissionViolation } from "./connect-bus.js";

const second = 1_000_000_000; // JetStream durations are nanoseconds
const day = 86_400 * second;

/** Options of the streams and buckets, with their defaults. */
export interface TopologyOptions {
  /** How long an unconsumed command waits for its agent. Default 1 day. */
  commandMaxAgeNs?: number;
  /** How long events are kept for replay. Default 30 days. */
  eventMaxAgeNs?: number;
  /** Window in which a repeated Nats-Msg-Id is dropped (scheduler replicas firing the same slot). Default 10 min. */
  duplicateWindowNs?: number;
  /** A host entry disappears this long after its agent's last heartbeat. Default 90 s. */
  hostTtlMs?: number;
}

export const defaultHostTtlMs = 90_000;

function streamConfigs(o: TopologyOptions): (Partial<StreamConfig> & { name: string })[] {
  const duplicate_window = o.duplicateWindowNs ?? 600 * second;
  return [
    {
      name: streams.commands,
      subjects: [subjects.commandsAll],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: o.commandMaxAgeNs ?? day,
      duplicate_window,
    },
    {
      name: streams.events,
      subjects: [subjects.eventsAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: o.eventMaxAgeNs ?? 30 * day,
      duplicate_window,
    },
  ];
}

/** What {@link ensureStreams} did. */
export interface EnsureStreamsResult {
  created: string[];
  updated: string[];
  /** Streams whose config differs from this version's but which this client may not update (least privilege). */
  drifted: string[];
}

/**
 * Creates the missing streams and updates the ones whose config drifted, so every service can start in any
 * order. Services hold only info/create rights on the streams (see @vmbs/contracts roles): a drifted stream is
 * then left as it is and reported, for the operator to update.
 */
export async function ensureStreams(nc: NatsConnection, o: TopologyOptions = {}): Promise<EnsureStreamsResult> {
  const jsm = await jetstreamManager(nc);
  const result: EnsureStreamsResult = { created: [], updated: [], drifted: [] };
  for (const config of streamConfigs(o)) {
    const name = config.name;
    const info = await jsm.streams.info(name).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
      throw err;
    });
    if (!info) {
      await jsm.streams.add(config);
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

/** The host inventory bucket; entries expire `hostTtlMs` after their last write (the agent's heartbeat). */
export async function openHostsBucket(nc: NatsConnection, o: TopologyOptions = {}): Promise<KV> {
  return new Kvm(nc).create(buckets.hosts, { history: 1, ttl: o.hostTtlMs ?? defaultHostTtlMs });
}

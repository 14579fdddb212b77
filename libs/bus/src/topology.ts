import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy, type StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { buckets, streams, subjects } from "@vmbs/contracts";

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

/** Creates the streams (or updates them to this config) so every service can start in any order. */
export async function ensureStreams(nc: NatsConnection, o: TopologyOptions = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const config of streamConfigs(o)) {
    const name = config.name;
    const exists = await jsm.streams.info(name).then(
      () => true,
      () => false,
    );
    if (exists) await jsm.streams.update(name, config);
    else await jsm.streams.add(config);
  }
}

/** The host inventory bucket; entries expire `hostTtlMs` after their last write (the agent's heartbeat). */
export async function openHostsBucket(nc: NatsConnection, o: TopologyOptions = {}): Promise<KV> {
  return new Kvm(nc).create(buckets.hosts, { history: 1, ttl: o.hostTtlMs ?? defaultHostTtlMs });
}

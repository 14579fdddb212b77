import { createHash, randomBytes } from "node:crypto";
import { buckets } from "@vmbs/contracts";
import { openBucket, readBucket, type NatsConnection } from "@vmbs/bus";
import { emptyFleet, type DomainRecord, type FleetRecords, type HostRecord } from "./fleet-records.js";

/*
 * The status service's records in the `vmbs_status` bucket: `host.<host>` and `domain.<host>.<hash>` (a domain
 * name may hold characters a key may not, hence the hash; the record itself names the domain).
 */

const hostKey = (host: string): string => `host.${host}`;
/** The secret the alarms' message ids are keyed with (see {@link StatusStore.alarmIdKey}). */
const alarmIdKeyKey = "alarm-id-key";
const domainKey = (host: string, domain: string): string => `domain.${host}.${createHash("sha256").update(domain).digest("hex").slice(0, 32)}`;

export interface StatusStore {
  /** Every record stored, as the model they make. Entries that do not parse are skipped and counted. */
  load(): Promise<{ fleet: FleetRecords; skipped: number }>;
  saveHost(record: HostRecord): Promise<void>;
  saveDomain(record: DomainRecord): Promise<void>;
  /**
   * A random secret made on first use and kept in the bucket (only the status role and the operator read it): the
   * alarms' message ids are keyed with it, so no other role can compute one and use it first (VMBS_EVT drops a
   * repeated Nats-Msg-Id whatever its subject), and a restarted service still makes the same id for an episode.
   */
  alarmIdKey(): Promise<string>;
}

export async function openStatusStore(nc: NatsConnection): Promise<StatusStore> {
  const { kv, read } = await openBucket(nc, buckets.status);
  return {
    async load() {
      const fleet = emptyFleet();
      let skipped = 0;
      for (const entry of await readBucket(nc, buckets.status)) {
        if (entry.key === alarmIdKeyKey) continue;
        try {
          const record = JSON.parse(new TextDecoder().decode(entry.value)) as HostRecord | DomainRecord;
          if (entry.key.startsWith("host.") && entry.key === hostKey(record.host)) fleet.hosts.set(record.host, record as HostRecord);
          else if ("domain" in record && entry.key === domainKey(record.host, record.domain)) {
            const byDomain = fleet.domains.get(record.host) ?? new Map<string, DomainRecord>();
            byDomain.set(record.domain, record);
            fleet.domains.set(record.host, byDomain);
          } else skipped++;
        } catch {
          skipped++;
        }
      }
      return { fleet, skipped };
    },
    async saveHost(record) {
      await kv.put(hostKey(record.host), JSON.stringify(record));
    },
    async saveDomain(record) {
      await kv.put(domainKey(record.host, record.domain), JSON.stringify(record));
    },
    async alarmIdKey() {
      const stored = await read(alarmIdKeyKey);
      if (stored) return new TextDecoder().decode(stored.value);
      const key = randomBytes(32).toString("hex");
      // Two services starting at once: the first one's key stands.
      return kv.create(alarmIdKeyKey, key).then(
        () => key,
        async (err: unknown) => {
          const now = await read(alarmIdKeyKey);
          if (!now) throw err;
          return new TextDecoder().decode(now.value);
        },
      );
    },
  };
}

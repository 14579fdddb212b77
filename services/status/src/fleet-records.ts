import type { BackupRun, DomainStatus, HostInventory } from "@vmbs/contracts";

/*
 * What the status service remembers, one record per host and per domain, kept in the `vmbs_status` bucket so a
 * restart rebuilds the same model. Records change only through the pure functions of fold-event.ts and
 * fleet-alarms.ts.
 */

/** One domain of one host. */
export interface DomainRecord {
  host: string;
  domain: string;
  /** Stream sequence of the last event folded in: an event delivered again is not counted twice. */
  seq: number;
  lastBackup: DomainStatus["lastBackup"];
  lastFailure: DomainStatus["lastFailure"];
  /** Checkpoints of the active chain (0 once it was archived or deleted). */
  chainLength: number;
  /** Archive folders of this domain made and not deleted since (names relative to the backup root). */
  archives: string[];
  mirror: DomainStatus["mirror"];
  lastDrill: DomainStatus["lastDrill"];
  /** The last chain event asking for a person (attention/failed), until a later backup completes. */
  chainAttention: { at: string; reason: string } | null;
  /** Runs by `<level>/<outcome>` (level `none` for a run that failed before the engine chose one). */
  runCounts: Record<string, number>;
  bytesTotal: number;
  /** The newest runs, oldest first (at most RUNS_KEPT). */
  runs: BackupRun[];
  /** When a heartbeat first listed the domain as scheduled: the clock of a domain never backed up. */
  firstSeenScheduled: string | null;
  /** The `since` of the stale alarm raised for the current episode (null: none raised). */
  staleAlarmFor: string | null;
}

/** One host. */
export interface HostRecord {
  host: string;
  /** The heartbeat of the host's last inventory seen. */
  lastSeen: string | null;
  versions: Record<string, string>;
  /** The domains of the host's last inventory (kept while the host is silent). */
  domains: HostInventory["domains"];
  /** The last heartbeat of a silence announced (`silent` raised, `back` not yet). */
  silentSince: string | null;
}

/** Runs kept per domain for its history. */
export const RUNS_KEPT = 30;

export function newDomainRecord(host: string, domain: string): DomainRecord {
  return {
    host,
    domain,
    seq: 0,
    lastBackup: null,
    lastFailure: null,
    chainLength: 0,
    archives: [],
    mirror: null,
    lastDrill: null,
    chainAttention: null,
    runCounts: {},
    bytesTotal: 0,
    runs: [],
    firstSeenScheduled: null,
    staleAlarmFor: null,
  };
}

export function newHostRecord(host: string): HostRecord {
  return { host, lastSeen: null, versions: {}, domains: [], silentSince: null };
}

/** The model: every host and domain record, by host then domain. */
export interface FleetRecords {
  hosts: Map<string, HostRecord>;
  domains: Map<string, Map<string, DomainRecord>>;
}

export function emptyFleet(): FleetRecords {
  return { hosts: new Map(), domains: new Map() };
}

/** A domain's record, made when first needed. */
export function domainRecordOf(fleet: FleetRecords, host: string, domain: string): DomainRecord {
  let byDomain = fleet.domains.get(host);
  if (!byDomain) fleet.domains.set(host, (byDomain = new Map()));
  let record = byDomain.get(domain);
  if (!record) byDomain.set(domain, (record = newDomainRecord(host, domain)));
  return record;
}

export function hostRecordOf(fleet: FleetRecords, host: string): HostRecord {
  let record = fleet.hosts.get(host);
  if (!record) fleet.hosts.set(host, (record = newHostRecord(host)));
  return record;
}

/**
 * Takes in a heartbeat: the host's last sighting, versions and domains, and when each scheduled domain was first
 * seen scheduled. Returns the records it changed (to be stored).
 */
export function observeInventory(fleet: FleetRecords, inventory: HostInventory, now: string): { host?: HostRecord; domains: DomainRecord[] } {
  const changed: { host?: HostRecord; domains: DomainRecord[] } = { domains: [] };
  const host = hostRecordOf(fleet, inventory.host);
  const versions = { vmbs: inventory.agentVersion, ...(inventory.versions ?? {}) };
  if (host.lastSeen !== inventory.heartbeatAt) {
    host.lastSeen = inventory.heartbeatAt;
    host.versions = versions;
    host.domains = inventory.domains;
    changed.host = host;
  }
  for (const d of inventory.domains) {
    if (!d.scheduled) continue;
    const record = domainRecordOf(fleet, inventory.host, d.name);
    if (record.firstSeenScheduled === null) {
      record.firstSeenScheduled = now;
      changed.domains.push(record);
    }
  }
  return changed;
}

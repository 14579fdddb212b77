import type { DomainStatus, FleetStatus, FleetStatusRequest, HostStatus } from "@vmbs/contracts";
import { newDomainRecord, newHostRecord, type DomainRecord, type FleetRecords, type HostRecord } from "./fleet-records.js";
import { describeAge, describeAgeChangesAt, type FleetPolicy } from "./fleet-policy.js";

/** Whether a host heart-beats. */
export function isAlive(host: HostRecord, now: Date, policy: FleetPolicy): boolean {
  return host.lastSeen !== null && now.getTime() - Date.parse(host.lastSeen) <= policy.silentAfterMs;
}

/** Since when a scheduled domain has waited for a good backup: its last one, else when it was first seen scheduled. */
export function waitingSince(record: DomainRecord): string | null {
  return record.lastBackup?.at ?? record.firstSeenScheduled;
}

/** Whether a scheduled domain's wait exceeds the RPO. */
export function isRpoBreached(record: DomainRecord, scheduled: boolean, now: Date, policy: FleetPolicy): boolean {
  const since = waitingSince(record);
  return scheduled && since !== null && now.getTime() - Date.parse(since) > policy.rpoSeconds * 1000;
}

function attentionOf(host: HostRecord, alive: boolean, record: DomainRecord, scheduled: boolean, now: Date, policy: FleetPolicy): string[] {
  const out: string[] = [];
  if (!alive) out.push(host.lastSeen ? `host silent since ${host.lastSeen}` : "host never heart-beat");
  if (isRpoBreached(record, scheduled, now, policy)) {
    const rpo = describeAge(policy.rpoSeconds * 1000);
    out.push(
      record.lastBackup
        ? `no good backup for ${describeAge(now.getTime() - Date.parse(record.lastBackup.at))} (RPO ${rpo})`
        : `never backed up since it was scheduled ${record.firstSeenScheduled} (RPO ${rpo})`,
    );
  }
  if (record.lastFailure && (!record.lastBackup || record.lastFailure.at > record.lastBackup.at)) out.push(`last backup failed: ${record.lastFailure.reason}`);
  if (record.chainAttention) out.push(`chain: ${record.chainAttention.reason}`);
  if (record.mirror?.state === "failed") out.push(`mirror failed: ${record.mirror.reason ?? "no reason given"}`);
  if (record.lastDrill && !record.lastDrill.ok) out.push(`drill failed: ${record.lastDrill.reason ?? "no reason given"}`);
  return out;
}

/**
 * When a domain's status next reads differently by the clock alone, no record changed: its RPO verdict turns, or
 * the age its attention names ticks. Its host's silence is the host's (see hostView).
 */
function domainStatusUntil(record: DomainRecord, scheduled: boolean, now: Date, policy: FleetPolicy): number {
  const since = scheduled ? waitingSince(record) : null;
  if (since === null) return Infinity;
  // isRpoBreached: older than the RPO by at least a millisecond.
  const breachAt = Date.parse(since) + policy.rpoSeconds * 1000 + 1;
  if (now.getTime() < breachAt) return breachAt;
  if (!record.lastBackup) return Infinity;
  const backedUp = Date.parse(record.lastBackup.at);
  return backedUp + describeAgeChangesAt(now.getTime() - backedUp);
}

function domainStatus(host: HostRecord, alive: boolean, record: DomainRecord, inventoried: HostRecord["domains"][number] | undefined, now: Date, policy: FleetPolicy, nextRun: Date | null): DomainStatus {
  const scheduled = inventoried?.scheduled ?? false;
  const next = scheduled ? nextRun : null;
  return {
    domain: record.domain,
    state: inventoried?.state ?? "unknown",
    scheduled,
    lastBackup: record.lastBackup,
    lastFailure: record.lastFailure,
    chainLength: record.chainLength,
    archives: record.archives.length,
    nextRun: next ? next.toISOString() : null,
    rpo: { limitSeconds: policy.rpoSeconds, breached: isRpoBreached(record, scheduled, now, policy) },
    mirror: record.mirror,
    lastDrill: record.lastDrill,
    attention: attentionOf(host, alive, record, scheduled, now, policy),
  };
}

/** Every host name the model knows, sorted. */
function hostNames(fleet: FleetRecords): string[] {
  return [...new Set([...fleet.hosts.keys(), ...fleet.domains.keys()])].sort();
}

/** The hosts a filter keeps (all, one, those after `filter.after`), in name order; `filter.domain` is hostView's. */
export function filteredHostNames(fleet: FleetRecords, filter: FleetStatusRequest): string[] {
  return hostNames(fleet).filter((name) => (filter.host === undefined || filter.host === name) && (filter.after === undefined || name > filter.after));
}

/** A host's status, and until when it holds (ms since the epoch) if no record of the host changes. */
export interface HostView {
  status: HostStatus;
  until: number;
}

/**
 * One host's status at `now` (only `domain`, when given; undefined when the host has no such domain). `nextRun` is
 * the schedule's next slot, the same for every domain: asked once per reply (node-cron takes ~30 µs per question,
 * which was 0.3 s of a 10 000-domain reply).
 */
export function hostView(fleet: FleetRecords, name: string, now: Date, policy: FleetPolicy, nextRun: Date | null, domain?: string): HostView | undefined {
  const host = fleet.hosts.get(name) ?? newHostRecord(name);
  const alive = isAlive(host, now, policy);
  // isAlive: a heartbeat at most silentAfterMs old.
  let until = alive ? Date.parse(host.lastSeen!) + policy.silentAfterMs + 1 : Infinity;
  const records = fleet.domains.get(name) ?? new Map<string, DomainRecord>();
  const inventoried = new Map(host.domains.map((d) => [d.name, d]));
  // Every domain of the last inventory, and those only events spoke of (since undefined or deleted).
  const domainNames = [...new Set([...inventoried.keys(), ...records.keys()])].sort();
  const domains: DomainStatus[] = [];
  for (const d of domainNames) {
    if (domain !== undefined && domain !== d) continue;
    const record = records.get(d) ?? newDomainRecord(name, d);
    const scheduled = inventoried.get(d)?.scheduled ?? false;
    domains.push(domainStatus(host, alive, record, inventoried.get(d), now, policy, nextRun));
    until = Math.min(until, domainStatusUntil(record, scheduled, now, policy));
  }
  if (domain !== undefined && domains.length === 0) return undefined;
  return { status: { host: name, alive, lastSeen: host.lastSeen, versions: host.versions, domains }, until };
}

/** The status of the fleet (or of one host or domain), whole: what the status page's /api/fleet answers. */
export function fleetStatus(fleet: FleetRecords, now: Date, policy: FleetPolicy, filter: FleetStatusRequest = {}): FleetStatus {
  const nextRun = policy.nextRun();
  const hosts = filteredHostNames(fleet, filter).flatMap((name) => hostView(fleet, name, now, policy, nextRun, filter.domain)?.status ?? []);
  return { at: now.toISOString(), hosts };
}

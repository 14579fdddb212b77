import type { DomainStatus, FleetStatus, FleetStatusRequest, HostStatus } from "@vmbs/contracts";
import { newDomainRecord, newHostRecord, type DomainRecord, type FleetRecords, type HostRecord } from "./fleet-records.js";
import { describeAge, type FleetPolicy } from "./fleet-policy.js";

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
export function hostNames(fleet: FleetRecords): string[] {
  return [...new Set([...fleet.hosts.keys(), ...fleet.domains.keys()])].sort();
}

/** The status of each host the filter keeps (all, one, those with the domain, those after `filter.after`), in name order. */
function* hostStatuses(fleet: FleetRecords, now: Date, policy: FleetPolicy, filter: FleetStatusRequest): Generator<HostStatus> {
  // The schedule's next slot is the same for every domain: asked once (node-cron takes ~30 µs per question, which
  // was 0.3 s of a 10 000-domain reply).
  const nextRun = policy.nextRun();
  for (const name of hostNames(fleet)) {
    if (filter.host !== undefined && filter.host !== name) continue;
    if (filter.after !== undefined && name <= filter.after) continue;
    const host = fleet.hosts.get(name) ?? newHostRecord(name);
    const alive = isAlive(host, now, policy);
    const records = fleet.domains.get(name) ?? new Map<string, DomainRecord>();
    const inventoried = new Map(host.domains.map((d) => [d.name, d]));
    // Every domain of the last inventory, and those only events spoke of (since undefined or deleted).
    const domainNames = [...new Set([...inventoried.keys(), ...records.keys()])].sort();
    const domains = domainNames
      .filter((d) => filter.domain === undefined || filter.domain === d)
      .map((d) => domainStatus(host, alive, records.get(d) ?? newDomainRecord(name, d), inventoried.get(d), now, policy, nextRun));
    if (filter.domain !== undefined && domains.length === 0) continue;
    yield { host: name, alive, lastSeen: host.lastSeen, versions: host.versions, domains };
  }
}

/** The status of the fleet (or of one host or domain), whole: what the status page's /api/fleet answers. */
export function fleetStatus(fleet: FleetRecords, now: Date, policy: FleetPolicy, filter: FleetStatusRequest = {}): FleetStatus {
  return { at: now.toISOString(), hosts: [...hostStatuses(fleet, now, policy, filter)] };
}

/**
 * The reply of `vmbs.svc.status.fleet` as JSON text of at most `maxBytes` (each host serialized once): hosts are
 * taken while they fit (at least one), and a reply cut short names its last host in `next`.
 */
export function fleetStatusJson(fleet: FleetRecords, now: Date, policy: FleetPolicy, filter: FleetStatusRequest = {}, maxBytes = Infinity): string {
  const at = JSON.stringify(now.toISOString());
  const hosts: string[] = [];
  let last = "";
  // `{"at":…,"hosts":[],"next":<host>}`: what the reply holds besides its hosts (a host id is at most 64 characters).
  let bytes = 32 + at.length + 66;
  for (const status of hostStatuses(fleet, now, policy, filter)) {
    const json = JSON.stringify(status);
    bytes += Buffer.byteLength(json) + 1;
    if (bytes > maxBytes && hosts.length > 0) return `{"at":${at},"hosts":[${hosts.join(",")}],"next":${JSON.stringify(last)}}`;
    hosts.push(json);
    last = status.host;
  }
  return `{"at":${at},"hosts":[${hosts.join(",")}]}`;
}

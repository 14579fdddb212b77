import type { FleetBackEvent, FleetSilentEvent, FleetStaleEvent } from "@vmbs/contracts";
import type { DomainRecord, FleetRecords, HostRecord } from "./fleet-records.js";
import { describeAge, type FleetPolicy } from "./fleet-policy.js";
import { isAlive, isRpoBreached, waitingSince } from "./fleet-view.js";

export type FleetAlarm = FleetSilentEvent | FleetBackEvent | FleetStaleEvent;

/** Alarms to raise, with the records that remember them raised (stored before the alarm is published). */
export interface AlarmDecision {
  alarms: FleetAlarm[];
  hosts: HostRecord[];
  domains: DomainRecord[];
}

/**
 * One alarm per episode: `silent` when a host stops heart-beating (the episode is its last heartbeat), `back` when
 * it beats again, `stale` when a scheduled domain of a live host waits longer than the RPO (the episode is what it
 * waits since). A silent host's domains raise no `stale`: the silence says it already.
 */
export function decideFleetAlarms(fleet: FleetRecords, now: Date, policy: FleetPolicy): AlarmDecision {
  const decision: AlarmDecision = { alarms: [], hosts: [], domains: [] };
  const at = now.toISOString();
  for (const host of fleet.hosts.values()) {
    const alive = isAlive(host, now, policy);
    if (!alive && host.lastSeen !== null && host.silentSince !== host.lastSeen) {
      host.silentSince = host.lastSeen;
      decision.hosts.push(host);
      decision.alarms.push({ type: "silent", host: host.host, lastHeartbeatAt: host.lastSeen, reason: `the agent of ${host.host} stopped heart-beating (last at ${host.lastSeen})`, at });
    } else if (alive && host.silentSince !== null) {
      const silentSince = host.silentSince;
      host.silentSince = null;
      decision.hosts.push(host);
      decision.alarms.push({ type: "back", host: host.host, silentSince, reason: `the agent of ${host.host} heart-beats again (silent since ${silentSince})`, at });
    }
    if (!alive || policy.staleAlarms === false) continue;
    const records = fleet.domains.get(host.host);
    for (const d of host.domains) {
      const record = records?.get(d.name);
      if (!record || !isRpoBreached(record, d.scheduled, now, policy)) continue;
      const since = waitingSince(record)!;
      if (record.staleAlarmFor === since) continue;
      record.staleAlarmFor = since;
      decision.domains.push(record);
      const rpoSeconds = policy.rpoSecondsOf(d.name);
      const rpo = describeAge(rpoSeconds * 1000);
      decision.alarms.push({
        type: "stale",
        host: host.host,
        domain: d.name,
        ...(record.lastBackup ? { lastCompletedAt: record.lastBackup.at } : {}),
        since,
        rpoSeconds,
        reason: record.lastBackup
          ? `${d.name} on ${host.host}: no good backup since ${since} (RPO ${rpo})`
          : `${d.name} on ${host.host}: never backed up since it was first seen scheduled at ${since} (RPO ${rpo})`,
        at,
      });
    }
  }
  return decision;
}

import type { HostInventory } from "@vmbs/contracts";

/** What the watch remembers (in Redis) between checks. */
export interface WatchMemory {
  /** host → the last heartbeatAt seen in its inventory. */
  heartbeats: Map<string, string>;
  /** `host\0domain` → time of the last completed backup seen. */
  completed: Map<string, string>;
  /** `host\0domain` → when the domain was first seen scheduled (the clock of a domain never backed up). */
  firstSeen: Map<string, string>;
}

export interface StaleAlarm {
  host: string;
  domain: string;
  lastCompletedAt?: string;
  since: string;
}

export interface SilentAlarm {
  host: string;
  lastHeartbeatAt: string;
}

export const domainKey = (host: string, domain: string): string => `${host}\0${domain}`;

/**
 * The dead man's switch: every scheduled domain of a live host whose last completed backup (or, without one,
 * its first sighting) is older than `staleMs`, and every host seen before that has no inventory any more (its
 * entry expires when the agent stops heart-beating).
 */
export function decideAlarms(now: number, staleMs: number, inventories: HostInventory[], memory: WatchMemory): { stale: StaleAlarm[]; silent: SilentAlarm[] } {
  const alive = new Set(inventories.map((i) => i.host));
  const silent = [...memory.heartbeats].filter(([host]) => !alive.has(host)).map(([host, lastHeartbeatAt]) => ({ host, lastHeartbeatAt }));
  const stale: StaleAlarm[] = [];
  for (const inv of inventories)
    for (const d of inv.domains) {
      if (!d.scheduled) continue;
      const key = domainKey(inv.host, d.name);
      const lastCompletedAt = memory.completed.get(key);
      const since = lastCompletedAt ?? memory.firstSeen.get(key);
      if (since !== undefined && now - Date.parse(since) > staleMs) stale.push({ host: inv.host, domain: d.name, ...(lastCompletedAt ? { lastCompletedAt } : {}), since });
    }
  return { stale, silent };
}

import type { FleetStatusRequest } from "@vmbs/contracts";
import type { FleetRecords } from "./fleet-records.js";
import type { FleetPolicy } from "./fleet-policy.js";
import { filteredHostNames, hostView } from "./fleet-view.js";

/** One host's status as JSON text, with what it was made for. */
interface CachedHost {
  json: string;
  bytes: number;
  /** It holds from when it was made to before `until` (ms since the epoch; see HostView.until)… */
  from: number;
  until: number;
  /** …and for this next slot of the schedule. */
  nextRun: string | null;
}

/**
 * The fleet reply, kept as each host's JSON text: a whole-fleet reply joins texts made before, and only hosts whose
 * records changed (`invalidate`) or whose clock-driven fields turned (silence, RPO verdict, an age in an attention)
 * are made again. Building and serializing 10 000 domains took ~40 ms per reply, which a busy fleet asks for every
 * few seconds.
 */
export interface FleetViewCache {
  /** A record of the host changed: its text is made again when next asked for. */
  invalidate(host: string): void;
  /**
   * The reply of `vmbs.svc.status.fleet` as JSON text of at most `maxBytes`: hosts are taken while they fit (at least
   * one), and a reply cut short names its last host in `next` (asked again with `after` for the rest).
   */
  json(now: Date, filter?: FleetStatusRequest, maxBytes?: number): string;
}

export function createFleetViewCache(fleet: FleetRecords, policy: FleetPolicy): FleetViewCache {
  const hosts = new Map<string, CachedHost>();

  /** The host's text at `now`, from the cache when it still holds (a domain filter is made afresh: it is small). */
  function hostJson(name: string, now: Date, nextRun: Date | null, domain: string | undefined): { json: string; bytes: number } | undefined {
    const nextRunIso = nextRun?.toISOString() ?? null;
    const cached = domain === undefined ? hosts.get(name) : undefined;
    // A clock set back is before `from`: made again.
    if (cached && cached.from <= now.getTime() && now.getTime() < cached.until && cached.nextRun === nextRunIso) return cached;
    const view = hostView(fleet, name, now, policy, nextRun, domain);
    if (!view) return undefined;
    const json = JSON.stringify(view.status);
    const made = { json, bytes: Buffer.byteLength(json), from: now.getTime(), until: view.until, nextRun: nextRunIso };
    if (domain === undefined) hosts.set(name, made);
    return made;
  }

  return {
    invalidate: (host) => void hosts.delete(host),
    json(now, filter = {}, maxBytes = Infinity) {
      const at = JSON.stringify(now.toISOString());
      const nextRun = policy.nextRun();
      const parts: string[] = [];
      let last = "";
      // `{"at":…,"hosts":[],"next":<host>}`: what the reply holds besides its hosts (a host id is at most 64 characters).
      let bytes = 32 + at.length + 66;
      for (const name of filteredHostNames(fleet, filter)) {
        const host = hostJson(name, now, nextRun, filter.domain);
        if (!host) continue;
        bytes += host.bytes + 1;
        if (bytes > maxBytes && parts.length > 0) return `{"at":${at},"hosts":[${parts.join(",")}],"next":${JSON.stringify(last)}}`;
        parts.push(host.json);
        last = name;
      }
      return `{"at":${at},"hosts":[${parts.join(",")}]}`;
    },
  };
}

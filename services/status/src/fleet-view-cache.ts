import type { FleetStatusRequest } from "@vmbs/contracts";
import type { FleetRecords } from "./fleet-records.js";
import type { FleetPolicy } from "./fleet-policy.js";
import { filteredHostNames, hostView } from "./fleet-view.js";

/** One host's status as JSON text (UTF-8), with what it was made for. */
interface CachedHost {
  json: Buffer;
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
 * few seconds. The texts are kept as bytes, outside the JS heap: a 1 MiB reply part is one copy, not a string to
 * collect and then encode.
 */
export interface FleetViewCache {
  /** A record of the host changed: its text is made again when next asked for. */
  invalidate(host: string): void;
  /**
   * The reply of `vmbs.svc.status.fleet` as JSON text (UTF-8) of at most `maxBytes`: hosts are taken while they fit
   * (at least one), and a reply cut short names its last host in `next` (asked again with `after` for the rest).
   */
  reply(now: Date, filter?: FleetStatusRequest, maxBytes?: number): Buffer;
}

const comma = Buffer.from(",");

export function createFleetViewCache(fleet: FleetRecords, policy: FleetPolicy): FleetViewCache {
  const hosts = new Map<string, CachedHost>();

  /** The host's text at `now`, from the cache when it still holds (a domain filter is made afresh: it is small). */
  function hostJson(name: string, now: Date, nextRun: Date | null, domain: string | undefined): Buffer | undefined {
    const nextRunIso = nextRun?.toISOString() ?? null;
    const cached = domain === undefined ? hosts.get(name) : undefined;
    // A clock set back is before `from`: made again.
    if (cached && cached.from <= now.getTime() && now.getTime() < cached.until && cached.nextRun === nextRunIso) return cached.json;
    const view = hostView(fleet, name, now, policy, nextRun, domain);
    if (!view) return undefined;
    const json = Buffer.from(JSON.stringify(view.status));
    if (domain === undefined) hosts.set(name, { json, from: now.getTime(), until: view.until, nextRun: nextRunIso });
    return json;
  }

  return {
    invalidate: (host) => void hosts.delete(host),
    reply(now, filter = {}, maxBytes = Infinity) {
      const at = JSON.stringify(now.toISOString());
      const nextRun = policy.nextRun();
      const parts: Buffer[] = [Buffer.from(`{"at":${at},"hosts":[`)];
      let last: string | undefined;
      // `{"at":…,"hosts":[],"next":<host>}`: what the reply holds besides its hosts (a host id is at most 64 characters).
      let bytes = 32 + at.length + 66;
      for (const name of filteredHostNames(fleet, filter)) {
        const host = hostJson(name, now, nextRun, filter.domain);
        if (!host) continue;
        bytes += host.length + 1;
        if (bytes > maxBytes && last !== undefined) return Buffer.concat([...parts, Buffer.from(`],"next":${JSON.stringify(last)}}`)]);
        if (last !== undefined) parts.push(comma);
        parts.push(host);
        last = name;
      }
      return Buffer.concat([...parts, Buffer.from("]}")]);
    },
  };
}

import { setTimeout as sleep } from "node:timers/promises";
import { LeaseBusyError, type ChainLeases, type Lease } from "@vmbs/bus";

/*
 * The chain leases of the instant VMs of one restore service: each is held from the start of an instant VM until
 * its finish or abandon, across requests, so that retention, rotation and mirror (and backups of the same chain)
 * wait while anything is served from the chain. A lease lost meanwhile (NATS away for a whole TTL) is taken again
 * as soon as the chain is free.
 */

export interface InstantLeases {
  /** Takes the chain lease of `source` for the instant VM `name`, waiting up to `waitMs` for a busy chain. */
  hold(name: string, source: string, waitMs: number): Promise<void>;
  /** Keeps trying to take it in the background (after a restart, or a loss), reporting each failure once. */
  keep(name: string, source: string): void;
  /** True while `name` holds its lease. */
  holds(name: string): boolean;
  release(name: string): Promise<void>;
  /**
   * The service stops: each lease is given back (the exports keep serving meanwhile; the next start takes them
   * again, and a crash would free them after the TTL anyway).
   */
  stop(): Promise<void>;
}

export interface InstantLeasesDeps {
  leases: ChainLeases;
  rootId: string;
  /** A lease lost, or not to be had; said once per episode. */
  onTrouble(name: string, source: string, reason: string): void;
}

export function createInstantLeases(deps: InstantLeasesDeps): InstantLeases {
  const held = new Map<string, Lease>();
  const wanted = new Map<string, string>();
  const stopping = new AbortController();
  const acquire = (source: string, waitMs: number): Promise<Lease> =>
    deps.leases.acquire(deps.rootId, source, { op: "instant-restore", waitMs, signal: stopping.signal });

  const watch = (name: string, source: string, lease: Lease): void => {
    held.set(name, lease);
    void lease.lost.then((err) => {
      if (held.get(name) !== lease || stopping.signal.aborted) return;
      held.delete(name);
      deps.onTrouble(name, source, `${err.message}; retention, rotation and mirror may work on the chain until it is taken again (the exports keep their files open)`);
      keep(name, source);
    });
  };
  const keep = (name: string, source: string): void => {
    wanted.set(name, source);
    void (async () => {
      let told = false;
      while (wanted.get(name) === source && !held.has(name) && !stopping.signal.aborted) {
        try {
          const lease = await acquire(source, deps.leases.ttlMs);
          // Finished or abandoned while this waited: not wanted any more.
          if (wanted.get(name) !== source || held.has(name)) await lease.release();
          else watch(name, source, lease);
        } catch (err) {
          if (stopping.signal.aborted) return;
          if (!told) deps.onTrouble(name, source, `the chain lease of ${source} cannot be taken (${(err as Error).message}); retrying`);
          told = true;
          if (!(err instanceof LeaseBusyError)) await sleep(deps.leases.ttlMs, undefined, { signal: stopping.signal }).catch(() => undefined);
        }
      }
    })();
  };

  return {
    async hold(name, source, waitMs) {
      watch(name, source, await acquire(source, waitMs));
      wanted.set(name, source);
    },
    keep,
    holds: (name) => held.has(name),
    async release(name) {
      wanted.delete(name);
      const lease = held.get(name);
      held.delete(name);
      await lease?.release();
    },
    async stop() {
      stopping.abort();
      const leases = [...held.values()];
      held.clear();
      wanted.clear();
      await Promise.all(leases.map((l) => l.release().catch(() => l.abandon())));
    },
  };
}

import { LeaseBusyError } from "./chain-lease-errors.js";
import type { ChainLeases } from "./chain-lease.js";
import type { DomainQueue } from "./domain-queue.js";

/** How long an operation waits for another holder of the chain (e.g. a restore or a mirror run). Default 30 min. */
const defaultChainWaitMs = 30 * 60_000;

/**
 * Runs work on one domain's chain. `leaseLost` aborts (with a LeaseLostError) when the chain lease could not be
 * kept — NATS unreachable for a whole TTL, or another process took the key — so the work stops writing to a
 * chain that is no longer ours.
 */
export type ChainGuard = <T>(domain: string, work: (leaseLost: AbortSignal) => Promise<T>) => Promise<T>;

/**
 * One writer per chain folder: the in-process queue orders this agent's own work on a domain, and the KV lease
 * keeps every other process (a second agent of any host sharing the backup root, mirror, restore) away while it
 * runs. `rootId` is the backup root's id (backupRootId), so the lease is keyed on the folder `<root>/<domain>`.
 */
export function createChainGuard(queue: DomainQueue, leases: ChainLeases, rootId: string, waitMs = defaultChainWaitMs): ChainGuard {
  return (domain, work) =>
    queue(domain, () =>
      leases.withLease(rootId, domain, { op: "chain", waitMs }, (lease) => work(lease.signal)).catch((err: unknown) => {
        if (err instanceof LeaseBusyError)
          throw new Error(`the chain of ${domain} is held by ${err.current?.holder ?? "another process"} (${err.current?.op ?? "?"})`, { cause: err });
        throw err;
      }),
    );
}

import { LeaseBusyError, type ChainLeases } from "@vmbs/bus";
import type { DomainQueue } from "./domain-queue.js";

/** How long an operation waits for another holder of the chain (e.g. a restore or a mirror run). Default 30 min. */
export const defaultChainWaitMs = 30 * 60_000;

/**
 * One writer per chain: the in-process queue orders this agent's own work on a domain, and the KV lease keeps
 * every other process (a second agent, mirror, restore) away while it runs. Same signature as the queue, so
 * every caller that serialised per domain now also holds the lease.
 */
export function createChainGuard(queue: DomainQueue, leases: ChainLeases, host: string, waitMs = defaultChainWaitMs): DomainQueue {
  return (domain, work) =>
    queue(domain, () =>
      leases.withLease(host, domain, { op: "chain", waitMs }, () => work()).catch((err: unknown) => {
        if (err instanceof LeaseBusyError)
          throw new Error(`the chain of ${domain} is held by ${err.current?.holder ?? "another process"} (${err.current?.op ?? "?"})`, { cause: err });
        throw err;
      }),
    );
}

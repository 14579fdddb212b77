import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { buckets } from "@vmbs/contracts";
import { LeaseBusyError, type LeaseHolder } from "./chain-lease-errors.js";
import { openKvLeases, type Lease, type LeaseEntry } from "./kv-lease.js";

/* Per-chain lease: one KV key per chain, on the lease primitives of kv-lease.ts. */

export { LeaseBusyError, LeaseLostError, type LeaseHolder } from "./chain-lease-errors.js";
export type { Lease } from "./kv-lease.js";

/** Options of {@link createChainLeases}. */
export interface ChainLeasesOptions {
  /** Written into every lease value, shown in {@link LeaseBusyError}; e.g. `backup-agent@hv1#pid`. */
  holder: string;
  /**
   * Lease length = the bucket's TTL, default 30 s (kv-buckets.ts). Every process must use the same value: a bucket's TTL is
   * fixed once created, so when the bucket already exists its TTL wins (see `ttlMs` on the result).
   */
  ttlMs?: number;
  /** Bucket name, default `buckets.chainLeases`. */
  bucket?: string;
  /**
   * A release in `withLease` that threw (NATS down as the work ended). The work's own result or error stands:
   * the key is left to expire after the TTL, which keeps others away no longer than a crashed holder would.
   */
  onReleaseError?: (err: unknown, key: string) => void;
}

/** Options of one acquire. */
export interface AcquireOptions {
  /** What the chain is held for ("backup", "rotation", "retention", ...). Default "chain". */
  op?: string;
  /** How long to wait for a busy lease before throwing {@link LeaseBusyError}. Default 0 (try once). */
  waitMs?: number;
  /** Poll interval while waiting. Default 250 ms. */
  pollMs?: number;
  /** Aborts the wait (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** The lease store of one process. */
export interface ChainLeases {
  /** TTL in effect (the existing bucket's TTL when it was created by someone else). */
  ttlMs: number;
  /** `rootId`: the backup root's id ({@link backupRootId}), so the lease guards the folder `<root>/<domain>`. */
  acquire(rootId: string, domain: string, opts?: AcquireOptions): Promise<Lease>;
  /** Acquires, runs `fn` with the lease (watch `lease.signal`), releases in every case; a failed release never replaces `fn`'s outcome. */
  withLease<T>(rootId: string, domain: string, opts: AcquireOptions, fn: (lease: Lease) => Promise<T>): Promise<T>;
}

/**
 * KV key of a chain lease: `<rootId>.<first 32 hex of sha256(domain)>`. It is keyed on the chain folder
 * `<root>/<domain>`, not on the host, so agents of different hosts sharing one backup root (same-named VMs)
 * never write one chain at once; `rootId` comes from the root's marker ({@link backupRootId}).
 * KV keys allow only `[-/_=.a-zA-Z0-9]`, and domain names may hold spaces or any
 * Unicode, so the domain is hashed: 128 bits of sha256 make a collision (two chains sharing a lock) moot.
 */
export function chainLeaseKey(rootId: string, domain: string): string {
  return `${rootId}.${createHash("sha256").update(domain, "utf8").digest("hex").slice(0, 32)}`;
}

function holderOf(entry: LeaseEntry | undefined): LeaseHolder | undefined {
  if (!entry) return undefined;
  try {
    return JSON.parse(entry.value) as LeaseHolder;
  } catch {
    return undefined;
  }
}

/**
 * Chain leases over NATS KV, so that backup, repair, rotation, retention, mirror and restore never work on
 * one chain at once — across processes and hosts.
 */
export async function createChainLeases(nc: NatsConnection, o: ChainLeasesOptions): Promise<ChainLeases> {
  const leases = await openKvLeases(nc, { bucket: o.bucket ?? buckets.chainLeases, ttlMs: o.ttlMs, label: "chain lease" });

  const acquire = async (rootId: string, domain: string, opts: AcquireOptions = {}): Promise<Lease> => {
    const key = chainLeaseKey(rootId, domain);
    const value = JSON.stringify({ holder: o.holder, op: opts.op ?? "chain", since: new Date().toISOString() } satisfies LeaseHolder);
    const deadline = Date.now() + (opts.waitMs ?? 0);
    for (;;) {
      opts.signal?.throwIfAborted();
      const lease = await leases.tryAcquire(key, value);
      if (lease) return lease;
      const left = deadline - Date.now();
      if (left <= 0) throw new LeaseBusyError(key, holderOf(await leases.current(key)));
      // Polling, not kv.watch: an expiry by bucket TTL produces no watch event on 2.9.
      await sleep(Math.min(left, opts.pollMs ?? 250), undefined, { signal: opts.signal });
    }
  };

  return {
    ttlMs: leases.ttlMs,
    acquire,
    async withLease(rootId, domain, opts, fn) {
      const lease = await acquire(rootId, domain, opts);
      const release = () => lease.release().catch((err: unknown) => o.onReleaseError?.(err, lease.key));
      let result: Awaited<ReturnType<typeof fn>>;
      try {
        result = await fn(lease);
      } catch (err) {
        await release();
        throw err;
      }
      await release();
      return result;
    },
  };
}

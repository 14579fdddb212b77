import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { buckets } from "@vmbs/contracts";
import { LeaseBusyError, LeaseLostError, type LeaseHolder } from "./chain-lease-errors.js";

/*
 * Per-chain lease in NATS KV (engineering-notes.md §2.4, verified on nats-server 2.9): the bucket TTL is the
 * lease length (per-key TTL needs 2.11), `create` acquires, `update` with the last revision renews, and
 * `delete` with `previousSeq` releases only while the key is still ours. Every race is detected by the
 * server's "wrong last sequence" code, never by message text.
 */

export { LeaseBusyError, LeaseLostError, type LeaseHolder } from "./chain-lease-errors.js";

/** Options of {@link createChainLeases}. */
export interface ChainLeasesOptions {
  /** Written into every lease value, shown in {@link LeaseBusyError}; e.g. `backup-agent@hv1#pid`. */
  holder: string;
  /**
   * Lease length = the bucket's TTL, default 30 s. Every process must use the same value: a bucket's TTL is
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

/** A held lease. Renewed automatically every TTL/3 until released, lost or abandoned. */
export interface Lease {
  key: string;
  /** KV revision of the last successful write (acquire or renewal). */
  readonly revision: number;
  /** Aborted with a {@link LeaseLostError} when the lease is lost; pass it to the chain operation. */
  readonly signal: AbortSignal;
  /** Resolves (never rejects) when the lease is lost. Stays pending after a normal release. */
  readonly lost: Promise<LeaseLostError>;
  /** Stops renewing and deletes the key if it is still ours (a no-op when lost or already released). */
  release(): Promise<void>;
  /** Stops renewing without deleting, as a crashed holder would; the key expires after the TTL. For tests. */
  abandon(): void;
}

/** The lease store of one process. */
export interface ChainLeases {
  /** TTL in effect (the existing bucket's TTL when it was created by someone else). */
  ttlMs: number;
  acquire(host: string, domain: string, opts?: AcquireOptions): Promise<Lease>;
  /** Acquires, runs `fn` with the lease (watch `lease.signal`), releases in every case; a failed release never replaces `fn`'s outcome. */
  withLease<T>(host: string, domain: string, opts: AcquireOptions, fn: (lease: Lease) => Promise<T>): Promise<T>;
}

/**
 * KV key of a chain lease. KV keys allow only `[-/_=.a-zA-Z0-9]`, and domain names may hold spaces or any
 * Unicode, so the domain is hashed: 128 bits of sha256 make a collision (two chains sharing a lock) moot.
 */
export function chainLeaseKey(host: string, domain: string): string {
  return `${host}.${createHash("sha256").update(domain, "utf8").digest("hex").slice(0, 32)}`;
}

function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

async function currentHolder(kv: KV, key: string): Promise<LeaseHolder | undefined> {
  const entry = await kv.get(key).catch(() => null);
  if (!entry || entry.operation !== "PUT") return undefined;
  try {
    return entry.json<LeaseHolder>();
  } catch {
    return undefined;
  }
}

/** Opens (creating if needed) the lease bucket; an existing bucket keeps its own TTL. */
async function openBucket(nc: NatsConnection, name: string, ttlMs: number): Promise<{ kv: KV; ttlMs: number }> {
  // Kvm.create opens an existing bucket as is (its config is not changed), so read back the TTL in effect:
  // renewing on our own idea of the TTL could let the key expire between two renewals.
  const kv = await new Kvm(nc).create(name, { history: 1, ttl: ttlMs });
  const actual = (await kv.status()).ttl;
  // Without a TTL a crashed holder's key would block its chain forever.
  if (!(actual > 0)) throw new Error(`KV bucket ${name} has no TTL: it cannot hold leases`);
  return { kv, ttlMs: actual };
}

/**
 * Chain leases over NATS KV, so that backup, repair, rotation, retention, mirror and restore never work on
 * one chain at once — across processes and hosts.
 */
export async function createChainLeases(nc: NatsConnection, o: ChainLeasesOptions): Promise<ChainLeases> {
  const { kv, ttlMs } = await openBucket(nc, o.bucket ?? buckets.chainLeases, o.ttlMs ?? 30_000);

  const hold = (key: string, value: string, firstRevision: number): Lease => {
    let revision = firstRevision;
    let lastRenewed = Date.now();
    let active = true;
    let timer: NodeJS.Timeout | undefined;
    const controller = new AbortController();
    let markLost: (err: LeaseLostError) => void = () => {};
    const lost = new Promise<LeaseLostError>((resolve) => (markLost = resolve));

    const lose = (reason: string, cause?: unknown): void => {
      if (!active) return;
      active = false;
      const err = new LeaseLostError(key, reason, { cause });
      controller.abort(err);
      markLost(err);
    };
    const renew = async (): Promise<void> => {
      try {
        revision = await kv.update(key, value, revision);
        lastRenewed = Date.now();
      } catch (err) {
        if (isWrongLastSequence(err)) return lose("the key changed: it expired or another holder took it", err);
        // A transient failure (reconnecting): the server's copy lives until lastRenewed + TTL, so keep trying.
        if (Date.now() - lastRenewed >= ttlMs) return lose("no renewal succeeded within the TTL", err);
      }
      if (active) timer = setTimeout(() => void renew(), ttlMs / 3);
    };
    timer = setTimeout(() => void renew(), ttlMs / 3);

    return {
      key,
      get revision() {
        return revision;
      },
      signal: controller.signal,
      lost,
      async release() {
        if (!active) return;
        active = false;
        clearTimeout(timer);
        // previousSeq: deletes only our own write; after an expiry or take-over this fails and nothing is touched.
        await kv.delete(key, { previousSeq: revision }).catch((err: unknown) => {
          if (!isWrongLastSequence(err)) throw err;
        });
      },
      abandon() {
        active = false;
        clearTimeout(timer);
      },
    };
  };

  const acquire = async (host: string, domain: string, opts: AcquireOptions = {}): Promise<Lease> => {
    const key = chainLeaseKey(host, domain);
    const value = JSON.stringify({ holder: o.holder, op: opts.op ?? "chain", since: new Date().toISOString() } satisfies LeaseHolder);
    const deadline = Date.now() + (opts.waitMs ?? 0);
    for (;;) {
      opts.signal?.throwIfAborted();
      try {
        return hold(key, value, await kv.create(key, value));
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        const left = deadline - Date.now();
        if (left <= 0) throw new LeaseBusyError(key, await currentHolder(kv, key), { cause: err });
        // Polling, not kv.watch: an expiry by bucket TTL produces no watch event on 2.9.
        await sleep(Math.min(left, opts.pollMs ?? 250), undefined, { signal: opts.signal });
      }
    }
  };

  return {
    ttlMs,
    acquire,
    async withLease(host, domain, opts, fn) {
      const lease = await acquire(host, domain, opts);
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

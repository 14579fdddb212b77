import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { LeaseLostError } from "./chain-lease-errors.js";
import { openBucket } from "./kv-buckets.js";

/*
 * A lease in NATS KV, shared by chain leases and agent presence (engineering-notes.md §2.4, verified on
 * nats-server 2.9): the bucket TTL is the lease length (per-key TTL needs 2.11), `create` acquires, `update`
 * with the last revision renews or takes over, and `delete` with `previousSeq` releases only while the key is
 * still ours. Every race is detected by the server's "wrong last sequence" code, never by message text.
 */

/** A held lease. Renewed automatically every TTL/3 until released, lost or abandoned. */
export interface Lease {
  key: string;
  /** KV revision of the last successful write (acquire or renewal). */
  readonly revision: number;
  /** Aborted with a {@link LeaseLostError} when the lease is lost; pass it to the work it guards. */
  readonly signal: AbortSignal;
  /** Resolves (never rejects) when the lease is lost. Stays pending after a normal release. */
  readonly lost: Promise<LeaseLostError>;
  /** Stops renewing and deletes the key if it is still ours (a no-op when lost or already released). */
  release(): Promise<void>;
  /** Stops renewing without deleting, as a crashed holder would; the key expires after the TTL. For tests. */
  abandon(): void;
}

/**
 * What a holder does when its key expired under it (renewals failed for a whole TTL, e.g. NATS was down):
 * `lose` — someone may have started on the same work meanwhile, so the lease is lost (chain leases);
 * `reclaim` — re-create the key if nobody else took it (agent presence: an outage is no reason to exit).
 */
export type ExpiryPolicy = "lose" | "reclaim";

/** Options of {@link openKvLeases}. */
export interface KvLeasesOptions {
  bucket: string;
  /** Lease length = the bucket's TTL (default: kv-buckets.ts). When the bucket already exists its TTL wins (see `ttlMs` on the result). */
  ttlMs?: number;
  onExpiry?: ExpiryPolicy;
  /** Names the lease in a {@link LeaseLostError}, e.g. "chain lease". */
  label: string;
}

/** A key's current value as written by a holder. */
export interface LeaseEntry {
  value: string;
  revision: number;
}

/** The lease primitives of one bucket. */
export interface KvLeases {
  /** TTL in effect (the existing bucket's TTL when it was created by someone else). */
  ttlMs: number;
  /** Acquires a free key; undefined when someone holds it. */
  tryAcquire(key: string, value: string): Promise<Lease | undefined>;
  /** Replaces the holder seen at `revision` (a dead one); undefined when the key changed meanwhile. */
  takeOver(key: string, value: string, revision: number): Promise<Lease | undefined>;
  /** The current holder's value, or undefined when the key is free. */
  current(key: string): Promise<LeaseEntry | undefined>;
}

function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}


/** Opens (creating if needed) a lease bucket; an existing bucket keeps its own TTL. */
export async function openKvLeases(nc: NatsConnection, o: KvLeasesOptions): Promise<KvLeases> {
  // An existing bucket keeps its TTL, read back where this client may: renewing on our own idea of the TTL could
  // let the key expire between two renewals.
  const { kv, ttlMs, read } = await openBucket(nc, o.bucket, { ttlMs: o.ttlMs });
  const stored = (key: string) => read(key).catch(() => undefined);
  // A value the server was made to store on the key for someone else (forged-delivery.ts) is no holder.
  const currentEntry = async (key: string): Promise<LeaseEntry | undefined> => {
    const now = await stored(key);
    return now && !now.forged ? { value: new TextDecoder().decode(now.value), revision: now.revision } : undefined;
  };
  // Without a TTL a crashed holder's key would block its work forever.
  if (!(ttlMs > 0)) throw new Error(`KV bucket ${o.bucket} has no TTL: it cannot hold leases`);
  const onExpiry = o.onExpiry ?? "lose";

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
      const err = new LeaseLostError(key, reason, { cause, label: o.label });
      controller.abort(err);
      markLost(err);
    };
    // On a conflict: lost, unless the key merely expired and the policy is to reclaim it, or a forged value took
    // its place while it cannot have expired (within the TTL nobody else can have taken it).
    const conflict = async (err: unknown): Promise<void> => {
      const occupant = await stored(key);
      if (occupant?.forged && Date.now() - lastRenewed < ttlMs) {
        revision = await kv.update(key, value, occupant.revision);
        lastRenewed = Date.now();
        return;
      }
      if (onExpiry === "reclaim") {
        const now = await currentEntry(key);
        if (!now) {
          revision = await kv.create(key, value);
          lastRenewed = Date.now();
          return;
        }
        return lose("another holder took the key", err);
      }
      lose("the key changed: it expired or another holder took it", err);
    };
    const renew = async (): Promise<void> => {
      try {
        revision = await kv.update(key, value, revision);
        lastRenewed = Date.now();
      } catch (err) {
        if (isWrongLastSequence(err)) await conflict(err).catch(() => undefined);
        // A transient failure (reconnecting): the server's copy lives until lastRenewed + TTL, so keep trying.
        else if (onExpiry === "lose" && Date.now() - lastRenewed >= ttlMs) lose("no renewal succeeded within the TTL", err);
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

  const attempt = async (write: () => Promise<number>, key: string, value: string): Promise<Lease | undefined> => {
    try {
      return hold(key, value, await write());
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      throw err;
    }
  };

  return {
    ttlMs,
    async tryAcquire(key, value) {
      const lease = await attempt(() => kv.create(key, value), key, value);
      if (lease) return lease;
      // Occupied by a forged value: free for the taking.
      const occupant = await stored(key);
      return occupant?.forged ? attempt(() => kv.update(key, value, occupant.revision), key, value) : undefined;
    },
    takeOver: (key, value, revision) => attempt(() => kv.update(key, value, revision), key, value),
    current: (key) => currentEntry(key),
  };
}

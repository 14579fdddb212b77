import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { buckets } from "@vmbs/contracts";
import { connectBus, type NatsConnection } from "./connect-bus.js";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { chainLeaseKey, createChainLeases, LeaseBusyError, LeaseLostError } from "./chain-lease.js";

// A real nats-server. @vmbs/lab's startTestNats wraps this same function, but lab depends on bus (a cycle).
describe("chain leases on a real nats-server", () => {
  let server: RunningNatsServer;
  let storeDir: string;
  let nc: NatsConnection;
  before(async () => {
    storeDir = await mkdtemp(join(tmpdir(), "vmbs-lease-store-"));
    server = await startNatsServer({ storeDir });
    nc = await connectBus(server.url, "lease-test");
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
    await rm(storeDir, { recursive: true, force: true });
  });

  // One bucket per TTL (bucket TTL is fixed once created), like production would do per lease length.
  const leases = (holder: string, ttlMs: number, tag: string) =>
    createChainLeases(nc, { holder, ttlMs, bucket: `${buckets.chainLeases}_${tag}` });

  it("hashes the domain into a valid KV key", () => {
    const key = chainLeaseKey("hv1", "win 11 ü/x");
    assert.match(key, /^hv1\.[0-9a-f]{32}$/);
    assert.notEqual(key, chainLeaseKey("hv1", "win 11 ü/y"));
  });

  it("withLease keeps the work's result when the release fails, and reports the release error", async () => {
    const own = await connectBus(server.url, "lease-release");
    const errors: string[] = [];
    const l = await createChainLeases(own, { holder: "agent-r", bucket: `${buckets.chainLeases}_release`, onReleaseError: (_err, key) => errors.push(key) });
    // The connection goes away as the work ends, as when NATS restarts at the end of a backup.
    const result = await l.withLease("hv1", "web", {}, async () => {
      await own.close();
      return "backed up";
    });
    assert.equal(result, "backed up");
    assert.deepEqual(errors, [chainLeaseKey("hv1", "web")]);
    // A failing work keeps its own error, not the release's.
    const own2 = await connectBus(server.url, "lease-release-2");
    const l2 = await createChainLeases(own2, { holder: "agent-r", bucket: `${buckets.chainLeases}_release2`, onReleaseError: (_err, key) => errors.push(key) });
    await assert.rejects(
      l2.withLease("hv1", "db", {}, async () => {
        await own2.close();
        throw new Error("engine failed");
      }),
      /engine failed/,
    );
    assert.equal(errors.length, 2);
  });

  it("is exclusive, and a busy error names the holder", async () => {
    const a = await leases("agent-a", 30_000, "excl");
    const b = await leases("agent-b", 30_000, "excl");
    const held = await a.acquire("hv1", "web server", { op: "backup" });
    const err = await b.acquire("hv1", "web server", { op: "rotation" }).then(
      () => assert.fail("second acquire must not succeed"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LeaseBusyError);
    assert.equal(err.current?.holder, "agent-a");
    assert.equal(err.current?.op, "backup");
    // Another domain on the same host is independent.
    const other = await b.acquire("hv1", "web");
    await other.release();
    await held.release();
    // A process configured with another TTL shares the existing bucket (and its TTL) instead of failing.
    assert.equal((await leases("agent-c", 1500, "excl")).ttlMs, 30_000);
  });

  it("a waiting acquire gets the lease after the release", async () => {
    const a = await leases("agent-a", 30_000, "wait");
    const b = await leases("agent-b", 30_000, "wait");
    const held = await a.acquire("hv1", "db");
    const started = Date.now();
    const waiting = b.acquire("hv1", "db", { waitMs: 10_000, pollMs: 50 });
    setTimeout(() => void held.release(), 300);
    const got = await waiting;
    assert.ok(Date.now() - started >= 250, "must have waited for the release");
    assert.equal(got.signal.aborted, false);
    await got.release();
  });

  it("renews while held, beyond the TTL", async () => {
    const a = await leases("agent-a", 1500, "renew");
    const b = await leases("agent-b", 1500, "renew");
    const held = await a.acquire("hv1", "mail");
    const first = held.revision;
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(held.revision > first, "renewals must have bumped the revision");
    await assert.rejects(b.acquire("hv1", "mail"), LeaseBusyError);
    await held.release();
  });

  it("expires when the holder dies; the old holder notices the loss and its release deletes nothing", async () => {
    const a = await leases("agent-a", 1500, "expiry");
    const b = await leases("agent-b", 1500, "expiry");
    const dead = await a.acquire("hv1", "vm1", { op: "backup" });
    dead.abandon();
    const successor = await b.acquire("hv1", "vm1", { op: "repair", waitMs: 5000, pollMs: 100 });

    // A second holder object whose renewals were merely stalled: it must see that the key moved on.
    const stale = await a.acquire("hv1", "vm2");
    const staleLost = stale.lost;
    const kv = await new Kvm(nc).open(`${buckets.chainLeases}_expiry`);
    await kv.put(chainLeaseKey("hv1", "vm2"), JSON.stringify({ holder: "intruder", op: "x", since: "" }));
    const lostErr = await staleLost;
    assert.ok(lostErr instanceof LeaseLostError);
    assert.equal(stale.signal.aborted, true);
    await stale.release();
    assert.equal((await kv.get(chainLeaseKey("hv1", "vm2")))?.operation, "PUT", "release after loss must not delete");

    // The dead holder's release must not remove the successor's key.
    await dead.release();
    const entry = await kv.get(successor.key);
    assert.equal(entry?.operation, "PUT");
    assert.equal(entry?.json<{ holder: string }>().holder, "agent-b");
    await successor.release();
    assert.notEqual((await kv.get(successor.key))?.operation, "PUT");
  });

  it("a holder that stalled past the TTL (GC pause, SIGSTOP) notices the loss on its next renewal", async () => {
    const a = await leases("agent-a", 1500, "stall");
    const held = await a.acquire("hv1", "vm3");
    // Block the event loop: no renewal can run, so the server expires the key by the bucket TTL.
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      /* busy wait on purpose */
    }
    const err = await held.lost;
    assert.ok(err instanceof LeaseLostError);
    assert.equal(held.signal.reason, err);
    const b = await leases("agent-b", 1500, "stall");
    const taker = await b.acquire("hv1", "vm3");
    await held.release();
    await taker.release();
  });
});

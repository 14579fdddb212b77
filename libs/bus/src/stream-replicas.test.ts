import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { buckets, streams, subjects } from "@vmbs/contracts";
import { startTestNatsCluster, type TestNatsCluster } from "@vmbs/lab";
import { connectBus, type NatsConnection } from "./connect-bus.js";
import { durablesOf } from "./durables.js";
import { openBucket } from "./kv-buckets.js";
import { publishJson } from "./publish-json.js";
import { StreamReplicasError } from "./stream-replicas.js";
import { setUpBus } from "./topology.js";
import { startBusFixture, type BusFixture } from "./testing/bus-fixture.js";

/* VMBS_STREAM_REPLICAS: set-up gives every stream and bucket its replica count, and never changes an existing one. */

describe("set-up on a 3-node cluster with 3 replicas", { timeout: 60_000 }, () => {
  let cluster: TestNatsCluster;
  let nc: NatsConnection;
  before(async () => {
    cluster = await startTestNatsCluster();
    nc = await connectBus(cluster.url, "replicas-test");
  });
  after(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it("makes every stream and bucket with 3 replicas; durables follow their stream", async () => {
    const durables = durablesOf([{ kind: "agent", host: "hv1" }, { kind: "notifier" }]);
    await setUpBus(nc, { durables, replicas: 3 });
    const jsm = await jetstreamManager(nc);
    const made = [streams.commands, streams.events, ...Object.values(buckets).map((b) => `KV_${b}`)];
    for (const name of made) {
      const info = await jsm.streams.info(name);
      assert.equal(info.config.num_replicas, 3, name);
      assert.equal(info.cluster?.replicas?.length, 2, `${name}: a leader and two followers`);
    }
    for (const d of durables) assert.equal((await jsm.consumers.info(d.stream, d.durable)).cluster?.replicas?.length, 2, d.durable);
    // Set-up again with the same count changes nothing.
    assert.deepEqual((await setUpBus(nc, { durables, replicas: 3 })).created, []);
  });
});

describe("an existing stream or bucket with another replica count", { timeout: 60_000 }, () => {
  let bus: BusFixture;
  before(async () => {
    bus = await startBusFixture("replicas-drift");
  });
  after(async () => bus?.stop());

  it("is reported by set-up, and keeps its replicas and its messages", async () => {
    await publishJson(bus.nc, subjects.evt.backup("hv1", "completed"), { kept: true }, "kept-1");
    await assert.rejects(setUpBus(bus.nc, { durables: [], replicas: 3 }), (err: unknown) => {
      assert.ok(err instanceof StreamReplicasError, String(err));
      assert.equal(err.actual, 1);
      assert.equal(err.wanted, 3);
      assert.match(err.message, /has 1 replica\(s\) but VMBS_STREAM_REPLICAS is 3/);
      return true;
    });
    const info = await (await jetstreamManager(bus.nc)).streams.info(streams.events);
    assert.equal(info.config.num_replicas, 1);
    assert.equal(info.state.messages, 1, "the event is still there");
  });

  it("is reported when a bucket is opened with another count", async () => {
    await openBucket(bus.nc, buckets.agentState);
    await assert.rejects(openBucket(bus.nc, buckets.agentState, { replicas: 3 }), (err: unknown) => err instanceof StreamReplicasError && err.stream === `KV_${buckets.agentState}`);
  });
});

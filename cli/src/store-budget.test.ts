import { it } from "node:test";
import assert from "node:assert/strict";
import { reservedStoreBytes } from "@vmbs/bus";
import { loadConfig } from "@vmbs/config";

// A new bucket or a bigger stream must still fit the smallest store `vmbs start` gives its local nats-server, or
// the last of them cannot be made ("insufficient storage resources") and start-up fails.
it("the streams and buckets fit the local nats-server's smallest JetStream store (VMBS_LOCAL_NATS_MAX_STORE_MB)", () => {
  const smallestStoreBytes = loadConfig({ HOST_ID: "hv1" }).VMBS_LOCAL_NATS_MAX_STORE_MB * 1024 * 1024;
  const reserved = reservedStoreBytes();
  assert.ok(reserved <= smallestStoreBytes, `${reserved / 2 ** 20} MiB reserved > ${smallestStoreBytes / 2 ** 20} MiB`);
  assert.ok(reserved > 1.5 * 2 ** 30, "the figure the README and the config's message give (about 1.7 GiB)");
});

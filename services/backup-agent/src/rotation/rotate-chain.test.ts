import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { archiveFolderName, needsRotation, readChainFolder } from "@vmbs/chain";
import { connectBus, ensureStreams, publishJson, type NatsConnection } from "@vmbs/bus";
import { chainEventSchema, subjects, type ChainEvent } from "@vmbs/contracts";
import { startTestNats, waitFor, type TestNats } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { rotateChain } from "./rotate-chain.js";
import { captureDeps, DAY, writeChain } from "../testing/chain-fixture.js";

const NOW = Date.UTC(2024, 5, 15, 12);

describe("rotation on real folders", () => {
  let base: string;
  let n = 0;
  let nats: TestNats;
  let nc: NatsConnection;
  const freshRoot = async () => {
    const root = join(base, `root-${n++}`);
    await mkdir(root);
    return root;
  };
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "vmbs-rotation-"));
    nats = await startTestNats();
    nc = await connectBus(nats.url, "rotation-test");
    await ensureStreams(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
    await rm(base, { recursive: true, force: true });
  });

  it("decides from the checkpoint list, copy folders and unclear states", async () => {
    const root = await freshRoot();
    const points = (k: number) => Array.from({ length: k }, (_, i) => NOW - (k - i) * DAY);
    const read = async (folder: string, c: Parameters<typeof writeChain>[3]) =>
      readChainFolder(await writeChain(root, folder, "vm1", c), "vm1");
    const three = await read("three", { points: points(3) });
    assert.equal(needsRotation(three, 3).rotate, true);
    assert.equal(needsRotation(three, 4).rotate, false);
    assert.equal(needsRotation(three, 0).rotate, false);
    assert.equal(needsRotation(three, 0, true).rotate, true);
    assert.equal(needsRotation(await read("copy", { points: points(1), copy: true }), 30).rotate, true);
    assert.equal(needsRotation(await read("nocpt", { points: points(3), cpt: false }), 2).rotate, false);
    assert.equal(needsRotation(await readChainFolder(join(root, "absent"), "vm1"), 1).rotate, false);
  });

  it("archives the chain after MAX checkpoints, then applies retention, announced over NATS", async () => {
    const root = await freshRoot();
    const domain = "win 11 ü";
    const old = [NOW - 90 * DAY, NOW - 60 * DAY].map((t) => archiveFolderName(domain, t, "UTC"));
    for (const [i, a] of old.entries()) await writeChain(root, a, domain, { points: [NOW - (90 - 30 * i) * DAY] });
    const points = [NOW - 3 * DAY, NOW - 2 * DAY, NOW - DAY];
    await writeChain(root, domain, domain, { points });

    const seen: ChainEvent[] = [];
    const sub = nc.subscribe(subjects.evt.chainAll("hv1"));
    void (async () => {
      for await (const m of sub) seen.push(chainEventSchema.parse(m.json()));
    })();
    const deps = {
      ...captureDeps(root, NOW).deps,
      logger: createLogger({ name: "test", level: "silent" }),
      publish: (e: ChainEvent) => publishJson(nc, subjects.evt.chain("hv1", e.type), e),
    };
    const below = await rotateChain(deps, { domain, maxBackupsPerChain: 4, keep: 1 });
    assert.equal(below.rotated, false);
    assert.match(below.reason, /3 of 4/);

    const s = await rotateChain(deps, { domain, maxBackupsPerChain: 3, keep: 1, requestId: "r1" });
    const expected = archiveFolderName(domain, points[0]!, "UTC");
    assert.equal(s.rotated, true);
    assert.equal(s.archive, expected);
    assert.deepEqual(s.retention?.deleted, [old[1], old[0]]);
    assert.deepEqual((await readdir(root)).sort(), [expected], "active folder moved, older archives pruned");

    await waitFor(() => seen.length === 3, { timeoutMs: 5000 });
    assert.deepEqual(seen.map((e) => e.type), ["archived", "pruned", "pruned"]);
    assert.equal(seen[0]!.trigger, "rotation");
    assert.equal(seen[0]!.requestId, "r1");
    assert.match(seen[0]!.reason, /3 checkpoints, MAX_BACKUPS_PER_CHAIN=3/);
    assert.deepEqual(seen[1]!.folders, [old[1]]);
    sub.unsubscribe();
  });
});

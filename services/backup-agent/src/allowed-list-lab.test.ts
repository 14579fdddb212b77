import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { Kvm } from "@nats-io/kv";
import { buckets, hostInventorySchema } from "@vmbs/contracts";
import { createAgentHarness, type AgentHarness } from "@vmbs/lab";

// VM_ALLOWED_LIST on the real stack: an agent backs up only the domains its names and globs match, lists the others
// as not scheduled and refuses a backup of one by name, also when they were defined after it started.
describe("backup agent with VM_ALLOWED_LIST (real lab)", { timeout: 300_000 }, () => {
  let h: AgentHarness;
  before(async () => {
    h = await createAgentHarness("allowlab");
    await h.startAgent({ VM_ALLOWED_LIST: `${h.lab.domainPrefix}keep-*` });
  });
  after(async () => h?.close());

  it("a backup of all scheduled domains takes only the matched one; the other is listed unscheduled and never touched", async () => {
    const kept = await h.lab.createDomain({ name: `${h.lab.domainPrefix}keep-1` });
    const other = await h.lab.createDomain({ name: `${h.lab.domainPrefix}other-1` });

    h.publishRaw(JSON.stringify({ requestId: "all-1" }));
    const done = await h.waitEvent((e) => e.requestId === "all-1" && e.domain === kept.name && e.type !== "started");
    assert.equal(done.type, "completed", JSON.stringify(done));

    h.publishRaw(JSON.stringify({ domain: other.name, requestId: "other-1" }));
    const refused = await h.waitEvent((e) => e.requestId === "other-1");
    assert.equal(refused.type, "failed");
    assert.equal(refused.type === "failed" && refused.reason, "domain is not matched by VM_ALLOWED_LIST and is never backed up");

    assert.deepEqual(
      h.events.filter((e) => e.domain === other.name).map((e) => [e.requestId, e.type]),
      [["other-1", "failed"]],
      "the only event of the other domain is the refusal",
    );
    assert.deepEqual((await readdir(h.backupRoot)).filter((n) => n.startsWith(h.lab.domainPrefix)), [kept.name]);

    const stored = await (await new Kvm(h.nc).open(buckets.hosts)).get("allowlab");
    const inventory = hostInventorySchema.parse(stored?.json());
    const scheduledOf = (name: string) => inventory.domains.find((d) => d.name === name)?.scheduled;
    assert.deepEqual([scheduledOf(kept.name), scheduledOf(other.name)], [true, false]);
  });
});

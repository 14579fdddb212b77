import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { publishJson } from "@vmbs/bus";
import { buckets, chainEventSchema, subjects, type BackupEvent, type ChainEvent } from "@vmbs/contracts";
import { createAgentHarness, waitFor, type AgentHarness } from "@vmbs/lab";

const byRequest = (requestId: string) => (e: BackupEvent) => e.requestId === requestId && e.type !== "started";

// The real agent with only its own host's credential (the `vmbs auth init` config): every path it takes — start-up
// checks, inventory, boot record, leases, backup / check / rotate commands, events — is allowed, nothing more.
describe("backup agent under least privilege", () => {
  let h: AgentHarness;
  const chainEvents: ChainEvent[] = [];
  before(async () => {
    h = await createAgentHarness("authlab", { auth: true });
    const sub = h.nc.subscribe(subjects.evt.chainAll("authlab"));
    void (async () => {
      for await (const m of sub) {
        const parsed = chainEventSchema.safeParse(m.json());
        if (parsed.success) chainEvents.push(parsed.data);
      }
    })();
    await h.startAgent();
  });
  after(async () => h?.close());

  it("backs up, checks and rotates a chain with the agent's own credential", async () => {
    const dom = await h.lab.createDomain({ name: `${h.lab.domainPrefix}auth-${Date.now().toString(16)}`, sizeMiB: 64 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "full-1" }));
    const full = await h.waitEvent(byRequest("full-1"));
    assert.equal(full.type, "completed", JSON.stringify(full));

    await publishJson(h.nc, subjects.cmd.check("authlab"), { domain: dom.name, requestId: "check-1" });
    const checked = await waitFor(() => chainEvents.find((e) => e.requestId === "check-1"), { timeoutMs: 120_000, what: "the check's chain event" });
    assert.notEqual(checked.type, "failed", JSON.stringify(checked));

    await publishJson(h.nc, subjects.cmd.rotate("authlab"), { domain: dom.name, requestId: "rotate-1" });
    const archived = await waitFor(() => chainEvents.find((e) => e.requestId === "rotate-1" && e.type === "archived"), { timeoutMs: 120_000, what: "the rotation's archived event" });
    assert.equal(archived.domain, dom.name);

    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "after-rotate" }));
    const next = await h.waitEvent(byRequest("after-rotate"));
    assert.equal(next.type, "completed", JSON.stringify(next));
    assert.equal(next.level, "full");

    const hosts = await new Kvm(h.nc).open(buckets.hosts);
    assert.ok(await hosts.get("authlab"), "the agent's inventory heartbeat is stored");
  });
});

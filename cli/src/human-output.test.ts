import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { fleetStatusSchema, subjects, type BusRole } from "@vmbs/contracts";
import { freePort, runOnPty, startRoleBus, testLogger, waitFor, type RoleBus } from "@vmbs/lab";
import { createFleetPolicy, startStatusService, type StatusService } from "@vmbs/status";

/*
 * Issue 17.5 on a real bus with the fleet's credentials (no libvirt): `vmbs status` draws its table on a terminal
 * and prints the service's JSON for scripts; the agent's role may publish its host's backup progress, and no other.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "ho1";

describe("human output and JSON for scripts (real bus, fleet credentials)", () => {
  let bus: RoleBus;
  let dir: string;
  let status: StatusService | undefined;
  let env: Record<string, string>;
  const seedFile = async (role: BusRole): Promise<string> => {
    const file = join(dir, `${role.kind}.nk`);
    await writeFile(file, `${bus.credentialOf(role).seed}\n`, { mode: 0o600 });
    return file;
  };
  before(async () => {
    bus = await startRoleBus([host]);
    dir = await mkdtemp(join(tmpdir(), "vmbs-human-output-"));
    env = { ...process.env, HOST_ID: host, NATS_URL: bus.nats.url, NATS_NKEY_SEED: await seedFile({ kind: "operator" }), VMBS_STATE_DIR: dir, NO_COLOR: "1" } as Record<string, string>;
    status = await startStatusService({ nc: await bus.connect({ kind: "status" }), policy: createFleetPolicy({ rpoMinutes: 1560 }), logger: testLogger("status"), listen: { host: "127.0.0.1", port: await freePort() } });
    await bus.beat(await bus.connect({ kind: "agent", host }), host, [{ name: "web", state: "running", scheduled: true }]);
  });
  after(async () => {
    await status?.stop();
    await bus?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("vmbs status: a table on a terminal, the service's reply as JSON through a pipe", async () => {
    const piped = await waitFor(
      async () => {
        const r = await execa("node", [vmbs, "status"], { env, reject: false, timeout: 30_000 });
        return r.stdout.includes('"web"') ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "the status service to know host ho1" },
    );
    // A domain just seen and not yet due needs no attention: exit 0.
    assert.equal(piped.exitCode, 0, piped.stderr);
    const reply = fleetStatusSchema.parse(JSON.parse(piped.stdout));
    assert.deepEqual(reply.hosts.map((h) => [h.host, h.domains.map((d) => d.domain)]), [[host, ["web"]]]);

    const tty = await runOnPty("node", [vmbs, "status"], env, []);
    assert.equal(tty.exitCode, 0, tty.out);
    const lines = tty.out.split(/\r?\n/);
    assert.match(lines[0]!, /^HOST {2}DOMAIN {2}LAST GOOD BACKUP {2}AGE {2}LEVEL {2}SIZE {2}CHAIN {2}MIRROR {2}LAST DRILL$/);
    assert.match(lines[1]!, /^ho1 {3}web {5}never/);
    assert.equal(lines.filter((l) => l !== "").length, 2, tty.out);
    assert.doesNotMatch(tty.out, /"hosts"/);

    const json = await runOnPty("node", [vmbs, "status", "--json"], env, []);
    assert.equal(fleetStatusSchema.parse(JSON.parse(json.out.trim())).hosts[0]!.host, host);
  });

  it("the agent role publishes its own host's backup progress, not another's", async () => {
    const agent = await bus.connect({ kind: "agent", host });
    const seen: string[] = [];
    const sub = bus.operator.subscribe("vmbs.progress.>");
    void (async () => {
      for await (const m of sub) seen.push(m.subject);
    })();
    await bus.operator.flush();
    agent.publish(subjects.progress.backup(host), "{}");
    agent.publish("vmbs.progress.backup.other", "{}");
    await agent.flush();
    await waitFor(() => seen.length > 0, { timeoutMs: 5_000, what: "the progress message" });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(seen, [subjects.progress.backup(host)]);
    sub.unsubscribe();
  });
});

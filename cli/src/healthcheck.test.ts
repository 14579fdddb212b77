import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { claimAgentPresence, type AgentPresence } from "@vmbs/bus";
import { freePort, startRoleBus, testLogger, type RoleBus } from "@vmbs/lab";
import { createFleetPolicy, startStatusService, type StatusService } from "@vmbs/status";

// test lane: independent (runs the CLI, never libvirt: no agent, no `vmbs start`)

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

// `vmbs healthcheck` as a container's HEALTHCHECK runs it: a real process against a real nats-server with the
// roles of `vmbs auth init`, each check with the credential its container mounts.
describe("vmbs healthcheck", () => {
  let bus: RoleBus;
  let dir: string;
  let presence: AgentPresence | undefined;
  let status: StatusService | undefined;
  const host = "hc1";
  const seedFile = async (role: Parameters<RoleBus["credentialOf"]>[0]): Promise<string> => {
    const file = join(dir, `${role.kind}.nk`);
    await writeFile(file, `${bus.credentialOf(role).seed}\n`, { mode: 0o600 });
    return file;
  };
  const run = (env: Record<string, string>, ...args: string[]) =>
    execa("node", [vmbs, "healthcheck", ...args], { env: { HOST_ID: host, NATS_URL: bus.nats.url, LOGFILE_PATH: join(dir, "vmbs.log"), ...env }, extendEnv: false, reject: false, timeout: 30_000 });

  before(async () => {
    bus = await startRoleBus([host]);
    dir = await mkdtemp(join(tmpdir(), "vmbs-healthcheck-"));
  });
  after(async () => {
    await presence?.lease.release();
    await status?.stop();
    await bus?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("healthy when NATS answers with the container's credential; exit 1 with one line when it does not", async () => {
    const ok = await run({ NATS_NKEY_SEED: await seedFile({ kind: "scheduler" }) });
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.match(ok.stdout, /^healthy: NATS at nats:\/\/127\.0\.0\.1:\d+ answered in \d+ ms$/);

    const down = await run({ NATS_URL: `nats://127.0.0.1:${await freePort()}` });
    assert.equal(down.exitCode, 1);
    assert.match(down.stderr, /^unhealthy: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .+$/);

    const badConfig = await run({ MAX_BACKUPS_PER_CHAIN: "many" });
    assert.equal(badConfig.exitCode, 1, "Docker reads any other status as reserved");
    assert.match(badConfig.stderr, /MAX_BACKUPS_PER_CHAIN/);
    assert.equal((await run({}, "--bogus")).exitCode, 2);
  });

  it("--agent: unhealthy until a live process of this machine holds the host's presence key", async () => {
    const env = { NATS_NKEY_SEED: await seedFile({ kind: "agent", host }) };
    const none = await run(env, "--agent");
    assert.equal(none.exitCode, 1);
    assert.match(none.stderr, /^unhealthy: no agent serves HOST_ID hc1/);

    // This test process stands in for the agent: same machine, a live pid.
    presence = await claimAgentPresence(await bus.connect({ kind: "agent", host }), { host });
    const live = await run(env, "--agent");
    assert.equal(live.exitCode, 0, live.stderr);
    assert.match(live.stdout, new RegExp(`agent of hc1 live \\(pid ${process.pid},`));
  });

  it("--status-page: healthy once the status service serves VMBS_HTTP_LISTEN", async () => {
    const port = await freePort();
    const env = { NATS_NKEY_SEED: await seedFile({ kind: "status" }), VMBS_HTTP_LISTEN: `0.0.0.0:${port}` };
    const before = await run(env, "--status-page");
    assert.equal(before.exitCode, 1);
    assert.match(before.stderr, /^unhealthy: the status page at http:\/\/127\.0\.0\.1:\d+\/api\/fleet does not answer/);

    status = await startStatusService({ nc: await bus.connect({ kind: "status" }), policy: createFleetPolicy({ rpoMinutes: 1560 }), logger: testLogger("status"), listen: { host: "127.0.0.1", port } });
    const up = await run(env, "--status-page");
    assert.equal(up.exitCode, 0, up.stderr);
    assert.match(up.stdout, /status page http:\/\/127\.0\.0\.1:\d+\/api\/fleet answered/);
  });
});

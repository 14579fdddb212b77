import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BusAuthPlanError, createBusAuth, refreshServerConfig } from "./auth-config.js";

describe("refreshServerConfig: an auth config with this version's permissions, same users and keys", () => {
  const fleet = createBusAuth({ hosts: ["hv1", "hv2", "my-host"], sharedRoots: { hv2: ["hv1"] } });
  // An older version's config: the same users, other permissions (here: hv2's agent lost everything but one subject).
  const agentHv2 = fleet.credentials.find((c) => c.id === "agent-hv2")!;
  const older = fleet.serverConfig.replace(
    new RegExp(`(# agent-hv2\\n {4}\\{ nkey: "${agentHv2.publicKey}", permissions: \\{\\n {8}publish: \\{ allow: )\\[[^\\n]*\\] \\},`),
    `$1["vmbs.evt.backup.hv2.>", "$KV.vmbs_chain_leases.hv2.>", "$KV.vmbs_chain_leases.hv1.>"] },`,
  );

  it("a config of this version stays as it is", () => {
    assert.equal(refreshServerConfig(fleet.serverConfig), fleet.serverConfig);
  });

  it("an older one becomes today's, with every key kept and the shared root read back from the lease keys", () => {
    assert.notEqual(older, fleet.serverConfig, "the test's older config differs");
    assert.equal(refreshServerConfig(older), fleet.serverConfig);
  });

  const refused: [string, string][] = [
    ["a config without generated users", "authorization { users = [ { user: a, password: b } ] }\n"],
    ["a user whose id names no role", fleet.serverConfig.replace("# scheduler\n", "# janitor\n")],
    ["a host id that is no host id", fleet.serverConfig.replace("# agent-hv1\n", "# agent-hv 1\n")],
  ];
  for (const [what, text] of refused) it(`refuses ${what}`, () => assert.throws(() => refreshServerConfig(text), BusAuthPlanError));
});

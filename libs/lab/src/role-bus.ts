import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authFileNames, busRolesOf, connectBus, createBusAuth, durablesOf, openBucket, setUpBus, type NatsConnection } from "@vmbs/bus";
import { buckets, roleId, roleInboxPrefix, type BusRole, type HostInventory } from "@vmbs/contracts";
import { startTestNats, type TestNats } from "./servers.js";

/** A real nats-server with the authorization config `vmbs auth init` writes, its streams and durables set up. */
export interface RoleBus {
  nats: TestNats;
  /** Connected as the operator (who set the bus up). */
  operator: NatsConnection;
  /** A new connection with the role's generated credentials; closed by `stop`. */
  connect(role: BusRole): Promise<NatsConnection>;
  /** The role's nkey seed and inbox prefix, for a child process that connects as that role. */
  credentialOf(role: BusRole): { seed: string; inboxPrefix: string };
  /** Writes a host's heartbeat (its inventory in the hosts bucket) as its agent does, through `nc`. */
  beat(nc: NatsConnection, host: string, domains: HostInventory["domains"]): Promise<void>;
  stop(): Promise<void>;
}

export async function startRoleBus(hosts: string[]): Promise<RoleBus> {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-role-bus-"));
  const auth = createBusAuth({ hosts });
  const configFile = join(dir, authFileNames.serverConfig);
  await writeFile(configFile, auth.serverConfig);
  const nats = await startTestNats({ configFile });
  const open: NatsConnection[] = [];
  const credentialOf = (role: BusRole): { seed: string; inboxPrefix: string } => {
    const credential = auth.credentials.find((c) => c.id === roleId(role));
    if (!credential) throw new Error(`no credential for role ${roleId(role)}`);
    return { seed: credential.seed, inboxPrefix: roleInboxPrefix(role) };
  };
  const connect = async (role: BusRole): Promise<NatsConnection> => {
    const { seed, inboxPrefix } = credentialOf(role);
    const nc = await connectBus(nats.url, `test-${roleId(role)}`, { nkeySeed: seed, inboxPrefix });
    open.push(nc);
    return nc;
  };
  const operator = await connect({ kind: "operator" });
  await setUpBus(operator, { durables: durablesOf(busRolesOf({ hosts })) });
  return {
    nats,
    operator,
    connect,
    credentialOf,
    async beat(nc, host, domains) {
      const { kv } = await openBucket(nc, buckets.hosts);
      const inventory: HostInventory = { host, hostname: host, agentVersion: "0.1.0", heartbeatAt: new Date().toISOString(), versions: { virtnbdbackup: "2.18" }, domains };
      await kv.put(host, JSON.stringify(inventory));
    },
    async stop() {
      for (const nc of open) await nc.close().catch(() => undefined);
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

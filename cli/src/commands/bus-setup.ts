import { durablesOf, setUpBus, StreamReplicasError } from "@vmbs/bus";
import { isHostToken, type BusRole } from "@vmbs/contracts";
import { exitStatus } from "../exit-reasons.js";
import { connectAsOperator } from "../operator-client.js";
import { loadConfigOrExit } from "../runtime.js";

/**
 * `vmbs bus setup`: with the operator's credential, makes the streams, buckets and every durable consumer of the
 * fleet's hosts — what the roles may not make themselves — with VMBS_STREAM_REPLICAS replicas. `vmbs start` does it
 * for its own host. Exit 0, 1, 2 or 78 (also: an existing stream has another replica count).
 */
export async function busSetupCommand(o: { hosts?: string }): Promise<number> {
  const config = loadConfigOrExit(process.env);
  const hosts = (o.hosts ?? config.HOST_ID).split(",").map((h) => h.trim()).filter(Boolean);
  const bad = hosts.find((h) => !isHostToken(h));
  if (hosts.length === 0 || bad !== undefined) {
    process.stderr.write(`vmbs bus setup: --hosts expects host ids of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(bad ?? "")})\n`);
    return 2;
  }
  const connected = await connectAsOperator("bus setup", undefined);
  if (typeof connected === "number") return connected;
  const { nc } = connected;
  try {
    const roles: BusRole[] = [{ kind: "notifier" }, { kind: "status" }, ...hosts.flatMap((host): BusRole[] => [{ kind: "agent", host }, { kind: "mirror", host }, { kind: "restore", host }])];
    const durables = durablesOf(roles, { commandAckWaitMs: config.VMBS_COMMAND_ACK_WAIT * 1000 });
    const result = await setUpBus(nc, { durables, replicas: config.VMBS_STREAM_REPLICAS }).catch((err: unknown) => {
      if (!(err instanceof StreamReplicasError)) throw err;
      process.stderr.write(`vmbs bus setup: ${err.message}\n`);
      return undefined;
    });
    if (!result) return exitStatus.config;
    if (result.unchecked.length > 0) {
      process.stderr.write(`vmbs bus setup: this credential may not manage ${result.unchecked.join(", ")} — run it with the operator's (operator.nk)\n`);
      return 1;
    }
    const told = (what: string, names: string[]) => (names.length > 0 ? [`${what}: ${names.join(", ")}`] : []);
    const lines = [
      ...told("created", result.created),
      ...told("updated", result.updated),
      `streams and buckets ready; ${durables.length} durable consumers ready for ${hosts.join(", ")}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    return 0;
  } finally {
    await nc.close();
  }
}

import { isHostToken } from "@vmbs/contracts";
import { connectBus, type NatsConnection } from "@vmbs/bus";
import { BusCredentialsError, credentialsOf } from "./bus-auth.js";
import { exitStatus } from "./exit-reasons.js";
import { loadConfigOrExit, natsUrlOf } from "./runtime.js";

/**
 * What a one-shot command (`vmbs backup`, `vmbs mirror`) needs: the host it addresses (`--host`, default this
 * HOST_ID) and a bus connection with the operator's credentials — or the exit status of a refusal, already told
 * on stderr (2: a bad --host, 78: unreadable credentials).
 */
export async function connectAsOperator(command: string, hostOption: string | undefined): Promise<{ host: string; nc: NatsConnection } | number> {
  const config = loadConfigOrExit(process.env);
  const host = hostOption ?? config.HOST_ID;
  if (!isHostToken(host)) {
    process.stderr.write(`--host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(host)})\n`);
    return 2;
  }
  try {
    return { host, nc: await connectBus(natsUrlOf(config), "vmbs-cli", await credentialsOf(config, { kind: "operator" })) };
  } catch (err) {
    if (!(err instanceof BusCredentialsError)) throw err;
    process.stderr.write(`vmbs ${command}: ${err.message}\n`);
    return exitStatus.config;
  }
}

import { isHostToken } from "@vmbs/contracts";
import type { Config } from "@vmbs/config";
import { BusConnectError, connectBus, type NatsConnection } from "@vmbs/bus";
import { redactUrl } from "@vmbs/logger";
import { BusCredentialsError, credentialsOf } from "./bus-auth.js";
import { exitStatus } from "./exit-reasons.js";
import { loadConfigOrExit, natsUrlOf } from "./runtime.js";

/** The one stderr line of a client command that found no NATS server. */
export function unreachableBusLine(command: string, err: BusConnectError, config: Pick<Config, "NATS_URL">): string {
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : "";
  const fix = config.NATS_URL
    ? "start nats-server there or correct NATS_URL"
    : "is vmbs start running on this machine? (NATS_URL is unset: the local server of vmbs start is meant)";
  return `vmbs ${command}: NATS at ${redactUrl(err.url)} is not reachable${cause} — ${fix}`;
}

/**
 * A bus connection with the operator's credentials, or the exit status of a refusal already told in one stderr
 * line: 78 unreadable credentials, 69 no server answers.
 */
export async function connectOperatorBus(command: string, config: Config): Promise<NatsConnection | number> {
  try {
    return await connectBus(natsUrlOf(config), "vmbs-cli", await credentialsOf(config, { kind: "operator" }));
  } catch (err) {
    if (err instanceof BusCredentialsError) {
      process.stderr.write(`vmbs ${command}: ${err.message}\n`);
      return exitStatus.config;
    }
    if (err instanceof BusConnectError) {
      process.stderr.write(`${unreachableBusLine(command, err, config)}\n`);
      return exitStatus.natsUnavailable;
    }
    throw err;
  }
}

/**
 * What a one-shot command (`vmbs backup`, `vmbs mirror`, …) needs: the host it addresses (`--host`, default this
 * HOST_ID) and a bus connection with the operator's credentials — or the exit status of a refusal, already told
 * on stderr (2: a bad --host, 78: unreadable credentials, 69: NATS unreachable).
 */
export async function connectAsOperator(command: string, hostOption: string | undefined): Promise<{ host: string; nc: NatsConnection } | number> {
  const config = loadConfigOrExit(process.env);
  const host = hostOption ?? config.HOST_ID;
  if (!isHostToken(host)) {
    process.stderr.write(`--host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(host)})\n`);
    return 2;
  }
  const nc = await connectOperatorBus(command, config);
  return typeof nc === "number" ? nc : { host, nc };
}

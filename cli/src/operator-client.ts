import { isHostToken } from "@vmbs/contracts";
import type { Config } from "@vmbs/config";
import { BusConnectError, connectBus, type NatsConnection } from "@vmbs/bus";
import { redactUrl } from "@vmbs/logger";
import { BusCredentialsError, credentialsOf } from "./bus-auth.js";
import { exitStatus } from "./exit-reasons.js";
import { loadConfigOrExit, natsUrlOf } from "./runtime.js";

/** A connect failure that is about who this client is (credentials, certificate), not about reaching the server. */
function isRefusedLogin(err: BusConnectError): boolean {
  const cause = err.cause instanceof Error ? err.cause.message : "";
  return /authori[sz]ation|authentication|certificate|tls/i.test(cause);
}

/** The one stderr line of a client command that could not connect, and its exit status (78 refused login, 69 no server). */
export function connectFailure(command: string, err: BusConnectError, config: Pick<Config, "NATS_URL">): { line: string; status: number } {
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : "";
  const head = `vmbs ${command}: cannot connect to NATS at ${redactUrl(err.url)}${cause}`;
  if (isRefusedLogin(err)) return { line: `${head} — the server refused this client: check NATS_NKEY_SEED (the operator's .nk), NATS_URL's credentials and NATS_TLS_*`, status: exitStatus.config };
  const fix = config.NATS_URL ? "start nats-server there or correct NATS_URL" : "is vmbs start running on this machine? (NATS_URL is unset: its local server is meant)";
  return { line: `${head} — ${fix}`, status: exitStatus.natsUnavailable };
}

/**
 * A bus connection with the operator's credentials, or the exit status of a refusal already told in one stderr
 * line: 78 unreadable or refused credentials, 69 no server answers.
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
      const { line, status } = connectFailure(command, err, config);
      process.stderr.write(`${line}\n`);
      return status;
    }
    throw err;
  }
}

/**
 * What a one-shot command (`vmbs backup`, `vmbs mirror`, …) needs: the host it addresses (`--host`, default this
 * HOST_ID) and a bus connection with the operator's credentials — or the exit status of a refusal, already told
 * on stderr (2: a bad --host, 78: unreadable or refused credentials, 69: NATS unreachable).
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

import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { connectBus, isPidAlive, openBucket, type NatsConnection, type PresenceRecord } from "@vmbs/bus";
import { ConfigError, loadConfig, type Config } from "@vmbs/config";
import { buckets, type BusRole } from "@vmbs/contracts";
import { redactUrl } from "@vmbs/logger";
import { BusCredentialsError, credentialsOf } from "../bus-auth.js";
import { configErrorLines } from "../exit-reasons.js";
import { natsUrlOf } from "../runtime.js";

export const healthcheckUsage = `Usage: vmbs healthcheck [--agent] [--status-page] [--timeout SECONDS]

For a container's HEALTHCHECK or a service manager. Checks that NATS answers with this process's settings
(NATS_URL and its credential, or the local nats-server and auth folder of vmbs start), and when asked:
  --agent           this HOST_ID's agent is live: a process on this machine holds its presence key
                    (vmbs_agent_presence; connects with the agent's credential)
  --status-page     the status service answers on VMBS_HTTP_LISTEN (GET /api/fleet)
  --timeout SEC     the whole check's limit (default 5)
Prints one line. Exit status: 0 healthy, 1 not healthy (or an invalid configuration), 2 bad usage.`;

/** Why the check failed, as the one line it prints. */
class Unhealthy extends Error {}

/** The underlying reason of a connection error (ECONNREFUSED, …), else its message. */
function reasonOf(err: unknown): string {
  const cause = (err as Error).cause;
  return cause instanceof Error ? cause.message : (err as Error).message;
}

export async function healthcheckCommand(args: string[]): Promise<number> {
  let values: { agent?: boolean; "status-page"?: boolean; timeout?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args, options: { agent: { type: "boolean" }, "status-page": { type: "boolean" }, timeout: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${healthcheckUsage}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${healthcheckUsage}\n`);
    return 0;
  }
  const timeoutSec = Number(values.timeout ?? 5);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
    process.stderr.write(`--timeout must be a positive number\n\n${healthcheckUsage}\n`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Docker reads any status but 0 and 1 as reserved: an invalid configuration is simply not healthy.
    process.stderr.write(configErrorLines(err, process.env).map((line) => `${line}\n`).join(""));
    return 1;
  }

  let stage = "connecting to NATS";
  let nc: NatsConnection | undefined;
  const check = async (): Promise<string[]> => {
    // The role sets the credential file of the local auth folder and the inbox prefix the presence read replies to.
    const role: BusRole = values.agent ? { kind: "agent", host: config.HOST_ID } : { kind: "operator" };
    const url = natsUrlOf(config);
    const auth = await credentialsOf(config, role).catch((err: unknown) => {
      throw err instanceof BusCredentialsError ? new Unhealthy(err.message) : err;
    });
    nc = await connectBus(url, "vmbs-healthcheck", auth).catch((err: unknown) => {
      throw new Unhealthy(`cannot connect to NATS at ${redactUrl(url)}: ${reasonOf(err)}`);
    });
    stage = "waiting for NATS to answer";
    const found = [`NATS at ${redactUrl(url)} answered in ${Math.round(await nc.rtt())} ms`];
    if (values.agent) {
      stage = "reading the agent's presence key";
      found.push(await agentPresence(nc, config.HOST_ID));
    }
    if (values["status-page"]) {
      stage = "asking the status page";
      found.push(await statusPage(config));
    }
    return found;
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Unhealthy(`no answer within ${timeoutSec} s while ${stage}`)), timeoutSec * 1000);
  });
  try {
    const found = await Promise.race([check(), deadline]);
    process.stdout.write(`healthy: ${found.join("; ")}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof Unhealthy)) throw err;
    process.stderr.write(`unhealthy: ${err.message}\n`);
    return 1;
  } finally {
    clearTimeout(timer);
    await (nc as NatsConnection | undefined)?.close().catch(() => undefined);
  }
}

/** The live agent of `host` on this machine, in words; Unhealthy when none holds the presence key here. */
async function agentPresence(nc: NatsConnection, host: string): Promise<string> {
  const entry = await (await openBucket(nc, buckets.agentPresence)).read(host);
  if (!entry || entry.forged) throw new Unhealthy(`no agent serves HOST_ID ${host} (its presence key is not held)`);
  let holder: PresenceRecord;
  try {
    holder = JSON.parse(new TextDecoder().decode(entry.value)) as PresenceRecord;
  } catch {
    throw new Unhealthy(`the presence key of HOST_ID ${host} is unreadable`);
  }
  if (holder.hostname !== hostname()) throw new Unhealthy(`the agent of HOST_ID ${host} runs on ${holder.hostname}, not on this machine (${hostname()})`);
  if (typeof holder.pid !== "number" || !isPidAlive(holder.pid)) throw new Unhealthy(`the agent of HOST_ID ${host} (pid ${holder.pid}) is gone; its presence key has not expired yet`);
  return `agent of ${host} live (pid ${holder.pid}, since ${holder.since})`;
}

async function statusPage(config: Config): Promise<string> {
  const listen = config.VMBS_HTTP_LISTEN;
  if (!listen) throw new Unhealthy("VMBS_HTTP_LISTEN is empty: there is no status page to ask");
  if (listen.port === 0) throw new Unhealthy("VMBS_HTTP_LISTEN has port 0 (any free port): give it a fixed port to check");
  // A wildcard address is reached on loopback.
  const host = listen.host === "0.0.0.0" ? "127.0.0.1" : listen.host === "::" ? "::1" : listen.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${listen.port}/api/fleet`;
  const res = await fetch(url).catch((err: unknown) => {
    throw new Unhealthy(`the status page at ${url} does not answer: ${reasonOf(err)}`);
  });
  await res.body?.cancel();
  if (res.status !== 200) throw new Unhealthy(`the status page at ${url} answered ${res.status}`);
  return `status page ${url} answered`;
}

import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline/promises";
import { connectBus, type BusAuth } from "@vmbs/bus";
import { configErrorExitCode, loadConfigOrExit } from "@vmbs/config";
import { isHostToken, restoreEventSchema, subjects, type RestoreEndpoint } from "@vmbs/contracts";
import { BusCredentialsError, credentialsOf } from "../bus-auth.js";
import { natsUrlOf } from "../runtime.js";

export interface RestoreCommandOptions {
  domain: string;
  host?: string;
  from?: string;
  set?: string;
  /** "latest" or a 0-based index into the set's checkpoints. */
  checkpoint?: string;
  disk?: string;
  as?: string;
  inPlace?: boolean;
  yes?: boolean;
  /** Only list the sets and the chosen set's checkpoints. */
  list?: boolean;
  timeoutSec: number;
}

/** Asks on the terminal; only an explicit "yes" counts. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(`${question} Type "yes" to continue: `)).trim() === "yes";
  } finally {
    rl.close();
  }
}

/**
 * `vmbs restore`: asks a host's restore service (vmbs.svc.restore.<host>.*) and prints its reply as JSON; each
 * step event is printed on stderr meanwhile. Exit 0 done, 1 refused or failed, 2 bad usage.
 */
export async function restoreCommand(o: RestoreCommandOptions): Promise<number> {
  const config = loadConfigOrExit(process.env);
  const host = o.host ?? config.HOST_ID;
  const usage = (line: string): number => (process.stderr.write(`vmbs restore: ${line}\n`), 2);
  if (!isHostToken(host)) return usage(`--host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(host)})`);
  if (o.checkpoint !== undefined && o.checkpoint !== "latest" && !/^\d+$/.test(o.checkpoint)) return usage("--checkpoint must be a number from 0 or latest");
  if (!o.list && (o.as === undefined) === (o.inPlace !== true)) return usage("give exactly one of --as NEW_NAME and --in-place (or --list)");
  if (o.inPlace && !o.yes) {
    // Changing an existing domain needs a person's consent: on a terminal it is asked, in a script --yes is it.
    if (!process.stdin.isTTY) {
      process.stderr.write(`vmbs restore: an in-place restore replaces the disks of ${o.domain}; without a terminal it needs --yes\n`);
      return 1;
    }
    if (!(await confirm(`This replaces the disks of ${o.domain} on ${host} (shutting it down if it runs).`))) {
      process.stderr.write("vmbs restore: not confirmed, nothing changed\n");
      return 1;
    }
  }

  let auth: BusAuth;
  try {
    auth = await credentialsOf(config, { kind: "operator" });
  } catch (err) {
    if (!(err instanceof BusCredentialsError)) throw err;
    process.stderr.write(`vmbs restore: ${err.message}\n`);
    return configErrorExitCode;
  }
  const nc = await connectBus(natsUrlOf(config), "vmbs-cli", auth);
  const ask = async (endpoint: RestoreEndpoint, body: object, timeoutMs: number): Promise<{ ok: boolean; json: unknown }> => {
    const msg = await nc.request(subjects.svc.restoreEndpoint(host, endpoint), JSON.stringify(body), { timeout: timeoutMs });
    const error = msg.headers?.get("Nats-Service-Error");
    return error ? { ok: false, json: { error } } : { ok: true, json: msg.json() };
  };
  const scope = { domain: o.domain, ...(o.from ? { from: o.from } : {}) };
  try {
    if (o.list) {
      const sets = await ask("sets", scope, 60_000);
      const checkpoints = sets.ok ? await ask("checkpoints", { ...scope, ...(o.set ? { set: o.set } : {}) }, 60_000) : undefined;
      process.stdout.write(`${JSON.stringify({ ...(sets.json as object), ...(checkpoints ? { active: checkpoints.json } : {}) })}\n`);
      return sets.ok && checkpoints?.ok ? 0 : 1;
    }
    const requestId = randomUUID();
    const events = nc.subscribe(subjects.evt.serviceAll("restore", host));
    void (async () => {
      for await (const m of events) {
        const e = restoreEventSchema.safeParse(m.json());
        if (e.success && e.data.requestId === requestId) process.stderr.write(`${e.data.type}${e.data.step ? `: ${e.data.step}` : ""}${e.data.reason ? `: ${e.data.reason}` : ""}\n`);
      }
    })();
    const reply = await ask(
      "run",
      {
        ...scope,
        ...(o.set ? { set: o.set } : {}),
        ...(o.checkpoint !== undefined && o.checkpoint !== "latest" ? { checkpoint: Number(o.checkpoint) } : {}),
        ...(o.disk ? { disk: o.disk } : {}),
        ...(o.as !== undefined ? { as: o.as } : { inPlace: true, consent: true }),
        requestId,
      },
      o.timeoutSec * 1000,
    );
    process.stdout.write(`${JSON.stringify(reply.json)}\n`);
    return reply.ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`vmbs restore: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

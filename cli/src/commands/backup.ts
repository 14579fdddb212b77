import { randomUUID } from "node:crypto";
import { backupEventSchema, backupLevels, isHostToken, subjects, type BackupLevel } from "@vmbs/contracts";
import { connectBus, publishJson, type BusAuth } from "@vmbs/bus";
import { configErrorExitCode, loadConfigOrExit } from "@vmbs/config";
import { BusCredentialsError, credentialsOf } from "../bus-auth.js";
import { natsUrlOf } from "../runtime.js";

export interface BackupCommandOptions {
  domain: string;
  host?: string;
  level: string;
  timeoutSec: number;
}

/** `vmbs backup`: publishes one backup command and prints the outcome event as JSON. Exit 0 = completed. */
export async function backupCommand(o: BackupCommandOptions): Promise<number> {
  const config = loadConfigOrExit(process.env);
  if (!backupLevels.includes(o.level as BackupLevel)) {
    process.stderr.write(`--level must be one of ${backupLevels.join(", ")}\n`);
    return 2;
  }
  const host = o.host ?? config.HOST_ID;
  if (!isHostToken(host)) {
    process.stderr.write(`--host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(host)})\n`);
    return 2;
  }
  let auth: BusAuth;
  try {
    auth = await credentialsOf(config, { kind: "operator" });
  } catch (err) {
    if (!(err instanceof BusCredentialsError)) throw err;
    process.stderr.write(`vmbs backup: ${err.message}\n`);
    return configErrorExitCode;
  }
  const nc = await connectBus(natsUrlOf(config), "vmbs-cli", auth);
  const requestId = randomUUID();
  const events = nc.subscribe(subjects.evt.backupAll(host), { timeout: o.timeoutSec * 1000 });
  try {
    const ack = await publishJson(nc, subjects.cmd.backup(host), { domain: o.domain, level: o.level, requestId });
    process.stderr.write(`command stored in ${ack.stream} #${ack.seq}; waiting for host ${host}\n`);
    for await (const msg of events) {
      const parsed = backupEventSchema.safeParse(msg.json());
      if (!parsed.success || parsed.data.requestId !== requestId) continue;
      process.stdout.write(`${JSON.stringify(parsed.data)}\n`);
      if (parsed.data.type === "completed") return 0;
      if (parsed.data.type === "failed") return 1;
    }
    return 1;
  } catch (err) {
    process.stderr.write(`vmbs backup: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

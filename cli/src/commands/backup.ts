import { randomUUID } from "node:crypto";
import { backupEventSchema, backupLevels, subjects, type BackupLevel } from "@vmbs/contracts";
import { publishJson } from "@vmbs/bus";
import { connectAsOperator } from "../operator-client.js";

export interface BackupCommandOptions {
  domain: string;
  host?: string;
  level: string;
  timeoutSec: number;
}

/** `vmbs backup`: publishes one backup command and prints the outcome event as JSON. Exit 0 = completed. */
export async function backupCommand(o: BackupCommandOptions): Promise<number> {
  if (!backupLevels.includes(o.level as BackupLevel)) {
    process.stderr.write(`--level must be one of ${backupLevels.join(", ")}\n`);
    return 2;
  }
  const client = await connectAsOperator("backup", o.host);
  if (typeof client === "number") return client;
  const { host, nc } = client;
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

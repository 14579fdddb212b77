import { access, constants, stat } from "node:fs/promises";
import {
  agentConsumerName,
  backupCommandSchema,
  parsePayload,
  streams,
  subjects,
  type BackupEvent,
  type BackupFailed,
} from "@vmbs/contracts";
import { consumeCommands, ensureStreams, openHostsBucket, publishJson, type NatsConnection, type JsMsg, type CommandContext } from "@vmbs/bus";
import { createVirsh, detectEngine, filterExtraArgs, type Virsh } from "@vmbs/virt";
import type { Config } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { createBackupRunner } from "./backup-runner.js";
import { createDomainQueue } from "./domain-queue.js";
import { createInventory } from "./inventory.js";

export interface BackupAgentDeps {
  config: Pick<Config, "HOST_ID" | "LOCAL_BACKUP_PATH" | "LIBVIRT_URI" | "VIRTNBDBACKUP_ARGS" | "VM_IGNORED_LIST" | "TZ">;
  nc: NatsConnection;
  logger: Logger;
  agentVersion?: string;
  /** Heartbeat period of the host inventory. Default 30 s. */
  heartbeatMs?: number;
}

export interface BackupAgent {
  stop(): Promise<void>;
}

export class BackupRootError extends Error {
  constructor(path: string, options?: ErrorOptions) {
    super(`LOCAL_BACKUP_PATH ${path} must be an existing, readable and writable directory`, options);
    this.name = "BackupRootError";
  }
}

async function assertBackupRoot(path: string): Promise<void> {
  try {
    if (!(await stat(path)).isDirectory()) throw new Error("not a directory");
    await access(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw new BackupRootError(path, { cause: err });
  }
}

/** The caller's requestId of a payload that failed validation, so it can still match its `failed` event. */
function requestIdOf(data: Uint8Array): string | undefined {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(data));
    const id = typeof value === "object" && value !== null ? (value as { requestId?: unknown }).requestId : undefined;
    return typeof id === "string" && id.length <= 200 ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The per-host agent: serves `vmbs.cmd.backup.<host>`, runs virtnbdbackup, announces every outcome. */
export async function startBackupAgent(deps: BackupAgentDeps): Promise<BackupAgent> {
  const { config, nc } = deps;
  const host = config.HOST_ID;
  const logger = deps.logger.child({ service: "backup-agent", host });
  await assertBackupRoot(config.LOCAL_BACKUP_PATH);
  const engine = await detectEngine();
  const extra = filterExtraArgs(config.VIRTNBDBACKUP_ARGS, engine);
  for (const d of extra.dropped) logger.warn(d, "ignoring an argument of VIRTNBDBACKUP_ARGS");
  logger.info({ engine: engine.version }, "virtnbdbackup detected");

  await ensureStreams(nc);
  const hosts = await openHostsBucket(nc);
  const virsh: Virsh = createVirsh(config.LIBVIRT_URI);
  const ignoredDomains = new Set(config.VM_IGNORED_LIST);
  const inventory = createInventory({ host, virsh, hosts, ignoredDomains, agentVersion: deps.agentVersion ?? "0.1.0", logger, intervalMs: deps.heartbeatMs });
  await inventory.start();

  const publish = async (event: BackupEvent | BackupFailed) => {
    await publishJson(nc, subjects.evt.backup(host, event.type), event);
  };
  const runBackup = createBackupRunner({
    host,
    backupRoot: config.LOCAL_BACKUP_PATH,
    libvirtUri: config.LIBVIRT_URI,
    virsh,
    engineArgs: extra.args,
    ignoredDomains,
    timeZone: config.TZ,
    publish,
    logger,
  });
  const runExclusive = createDomainQueue();

  const handle = async (msg: JsMsg, ctx: CommandContext) => {
    const parsed = parsePayload(backupCommandSchema, msg.data);
    if (!parsed.ok) {
      logger.warn({ seq: msg.seq, reason: parsed.reason }, "rejected a backup command");
      const requestId = requestIdOf(msg.data);
      await publish({ type: "failed", host, requestId, runId: `msg-${msg.seq}`, reason: parsed.reason, at: new Date().toISOString() });
      return "term" as const;
    }
    const cmd = parsed.value;
    const targets = cmd.domain
      ? [cmd.domain]
      : (await inventory.refresh()).domains.filter((d) => d.scheduled).map((d) => d.name);
    for (const domain of targets) {
      if (ctx.signal.aborted) break;
      await runExclusive(domain, () => runBackup({ domain, level: cmd.level, requestId: cmd.requestId, signal: ctx.signal })).catch(
        async (err: unknown) => {
          logger.error({ err, domain }, "backup run crashed");
          await publish({ type: "failed", host, domain, requestId: cmd.requestId, runId: `msg-${msg.seq}`, reason: `internal error: ${(err as Error).message}`, at: new Date().toISOString() });
        },
      );
    }
    return "ack" as const;
  };

  const consumer = await consumeCommands(nc, {
    stream: streams.commands,
    durable: agentConsumerName("backup", host),
    filterSubject: subjects.cmd.backup(host),
    handler: handle,
    onError: (err, msg) => logger.error({ err, seq: msg?.seq }, "command handling failed"),
  });
  logger.info({ subject: subjects.cmd.backup(host) }, "backup agent serving");

  return {
    async stop() {
      inventory.stop();
      await consumer.stop();
      logger.info("backup agent stopped");
    },
  };
}

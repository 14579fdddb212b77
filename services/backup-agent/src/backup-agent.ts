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
import { createChainChecker } from "./chain-check/chain-checker.js";
import { createCheckCommandHandler, requestIdOf } from "./chain-check/check-commands.js";
import { createGuardedBackup } from "./chain-check/guarded-backup.js";
import { runStartupChecks } from "./chain-check/startup-checks.js";
import { createDomainQueue } from "./domain-queue.js";
import { createInventory } from "./inventory.js";

export interface BackupAgentDeps {
  config: Pick<
    Config,
    | "HOST_ID"
    | "LOCAL_BACKUP_PATH"
    | "LIBVIRT_URI"
    | "VIRTNBDBACKUP_ARGS"
    | "VM_IGNORED_LIST"
    | "TZ"
    | "VM_ALLOW_BACKUP_CHAIN_FIX"
    | "VM_ALLOW_POWERCYCLE"
    | "VM_WAIT_TIME"
    | "CHECK_BACKUPS_INTEGRITY"
    | "VM_AUTOSTART_LIST"
  >;
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
  // Aborted on stop, so a full started by a chain check is cancelled like any other run.
  const stopping = new AbortController();
  const checker = await createChainChecker({
    config,
    nc,
    virsh,
    logger,
    runFull: async (domain) => (await runBackup({ domain, level: "full", signal: stopping.signal })).ok,
  });
  const scheduledDomains = async () => (await inventory.refresh()).domains.filter((d) => d.scheduled).map((d) => d.name);
  const isScheduled = async (domain: string) => (await scheduledDomains()).includes(domain);
  const guardedBackup = createGuardedBackup({ host, checker, runBackup, publishFailed: publish, isScheduled, logger });

  // Chains are made consistent before any backup command is taken (issue 3 items 3 and 7).
  await runStartupChecks({ checker, virsh, runExclusive, logger, autostart: config.VM_AUTOSTART_LIST }, await scheduledDomains());

  const handle = async (msg: JsMsg, ctx: CommandContext) => {
    const parsed = parsePayload(backupCommandSchema, msg.data);
    if (!parsed.ok) {
      logger.warn({ seq: msg.seq, reason: parsed.reason }, "rejected a backup command");
      const requestId = requestIdOf(msg.data);
      await publish({ type: "failed", host, requestId, runId: `msg-${msg.seq}`, reason: parsed.reason, at: new Date().toISOString() });
      return "term" as const;
    }
    const cmd = parsed.value;
    const targets = cmd.domain ? [cmd.domain] : await scheduledDomains();
    for (const domain of targets) {
      if (ctx.signal.aborted) break;
      await runExclusive(domain, () => guardedBackup({ domain, level: cmd.level, requestId: cmd.requestId, signal: ctx.signal })).catch(
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
  const checkConsumer = await consumeCommands(nc, {
    stream: streams.commands,
    durable: agentConsumerName("check", host),
    filterSubject: subjects.cmd.check(host),
    handler: createCheckCommandHandler({ checker, runExclusive, scheduledDomains, logger }),
    onError: (err, msg) => logger.error({ err, seq: msg?.seq }, "check command handling failed"),
  });
  logger.info({ subjects: [subjects.cmd.backup(host), subjects.cmd.check(host)] }, "backup agent serving");

  return {
    async stop() {
      inventory.stop();
      stopping.abort();
      await Promise.all([consumer.stop(), checkConsumer.stop()]);
      logger.info("backup agent stopped");
    },
  };
}

import { AsyncLocalStorage } from "node:async_hooks";
import { join } from "node:path";
import {
  agentDurable,
  consumeDurable,
  createBackupEventPublisher,
  createChainEventPublisher,
  createChainGuard,
  createChainLeases,
  createDomainQueue,
  ensureStreams,
  openHostsBucket,
  type DurableConsumer,
  type NatsConnection,
  type OutboxEvent,
} from "@vmbs/bus";
import { backupRootId, type FileLister } from "@vmbs/chain";
import { createLibvirt, detectEngine, filterExtraArgs, type Libvirt } from "@vmbs/virt";
import { domainSelection, noPolicySource, policyFor, type Config, type PolicyDefaults, type PolicySource } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { subjects, type BackupProgress } from "@vmbs/contracts";
import { openAgentJournal } from "./agent-journal.js";
import { assertBackupRoot } from "./backup-root.js";
import { createBackupRunner } from "./backup-runner.js";
import { createChainChecker } from "./chain-check/chain-checker.js";
import { createGuardedBackup } from "./chain-check/guarded-backup.js";
import { runStartupChecks } from "./chain-check/startup-checks.js";
import { createBackupCommandHandler } from "./handle-backup-command.js";
import { createChainCommandHandler, type ChainCommandDeps } from "./handle-chain-command.js";
import { createInventory } from "./inventory.js";
import { rotationDone } from "./resume-rules.js";
import { createChainUpkeep } from "./rotation/chain-upkeep.js";

export interface BackupAgentDeps {
  config: Pick<
    Config,
    | "HOST_ID"
    | "LOCAL_BACKUP_PATH"
    | "LIBVIRT_URI"
    | "VIRTNBDBACKUP_ARGS"
    | "VM_IGNORED_LIST"
    | "VM_ALLOWED_LIST"
    | "TZ"
    | "VM_ALLOW_BACKUP_CHAIN_FIX"
    | "VM_ALLOW_POWERCYCLE"
    | "VM_WAIT_TIME"
    | "CHECK_BACKUPS_INTEGRITY"
    | "VM_AUTOSTART_LIST"
    | "MAX_BACKUPS_PER_CHAIN"
    | "LOCAL_BACKUP_CHAINS_TO_KEEP"
    | "LOCAL_RETENTION_DAYS"
    | "LOCAL_RETENTION_WEEKS"
    | "LOCAL_RETENTION_MONTHS"
    | "VMBS_LIBVIRT_TIMEOUT"
    | "VMBS_ENGINE_STALL_TIMEOUT"
    | "VMBS_COMMAND_ACK_WAIT"
    | "VMBS_STATE_DIR"
    | keyof PolicyDefaults
  >;
  nc: NatsConnection;
  logger: Logger;
  /** The process's VMBS_POLICY_FILE, kept current (serve.ts opens one for all its services); none by default. */
  policies?: PolicySource;
  agentVersion?: string;
  /** Heartbeat period of the host inventory. Default 30 s. */
  heartbeatMs?: number;
  /** Period of a running backup's progress messages. Default 2 s. */
  progressIntervalMs?: number;
  /** Aborts a long start-up (chain checks, first full backups) when the process is asked to stop. */
  signal?: AbortSignal;
  /** Where chain folders are read: the local disk by default (a test counts the reads of one backup). */
  chainFiles?: FileLister;
}

export interface BackupAgentHandle {
  stop(): Promise<void>;
}

/** The agent's own state: `$VMBS_STATE_DIR/agent/<host>/` (event outbox, command outcomes). */
export function agentStateDir(stateDir: string, host: string): string {
  return join(stateDir, "agent", host);
}

/** How long a stopping agent keeps trying to publish its outbox before leaving the rest for its next start. */
const outboxDrainOnStopMs = 3_000;

/**
 * The per-host agent: serves `vmbs.cmd.backup.<host>`, runs virtnbdbackup, announces every outcome.
 * Every event leaves through a durable outbox and every command through a journal of outcomes, so a lost ack
 * or a NATS restart neither repeats a backup nor loses its events.
 */
export async function startBackupAgent(deps: BackupAgentDeps): Promise<BackupAgentHandle> {
  const { config, nc } = deps;
  const host = config.HOST_ID;
  const logger = deps.logger.child({ service: "backup-agent", host });
  await assertBackupRoot(config.LOCAL_BACKUP_PATH);
  // Chain leases are keyed on the folder: every agent writing into this root, on any host, shares its id.
  const rootId = await backupRootId(config.LOCAL_BACKUP_PATH, host);
  const engine = await detectEngine();
  const extra = filterExtraArgs(config.VIRTNBDBACKUP_ARGS, engine);
  for (const d of extra.dropped) logger.warn(d, "ignoring an argument of VIRTNBDBACKUP_ARGS");
  logger.info({ engine: engine.version }, "virtnbdbackup detected");

  const policies = deps.policies ?? noPolicySource;
  const policyOf = (domain: string) => policyFor(policies.current(), config, domain);

  await ensureStreams(nc);
  const hosts = await openHostsBucket(nc);
  const libvirt: Libvirt = createLibvirt(config.LIBVIRT_URI, { timeoutMs: config.VMBS_LIBVIRT_TIMEOUT * 1000 });
  const selection = domainSelection(config);
  // The versions the status shows per host; a libvirt that does not answer now only leaves them out.
  const versions = { virtnbdbackup: engine.version, ...(await libvirt.versions().catch(() => ({}))) };
  const inventory = createInventory({ host, libvirt, hosts, selection, agentVersion: deps.agentVersion ?? "0.1.0", versions, logger, intervalMs: deps.heartbeatMs });
  await inventory.start();

  const stateDir = agentStateDir(config.VMBS_STATE_DIR, host);
  const { outbox, journal } = await openAgentJournal({ nc, host, stateDir, logger });
  // One publisher per event kind for this whole agent (libs/bus publish-events.ts), both through the journal's
  // outbox: every chain event — the runner's, the checker's, rotation's and retention's — and every backup event.
  // The backup events of one queued run, for the commands that joined it (see handle-backup-command.ts).
  const runEvents = new AsyncLocalStorage<OutboxEvent[]>();
  const publish = createBackupEventPublisher(async (event) => {
    runEvents.getStore()?.push(event);
    await journal.announce(event);
  }, host);
  const publishChain = createChainEventPublisher(journal.announce, host);
  const runBackup = createBackupRunner({
    host,
    backupRoot: config.LOCAL_BACKUP_PATH,
    libvirtUri: config.LIBVIRT_URI,
    libvirt,
    engineArgs: extra.args,
    engineStallTimeoutMs: config.VMBS_ENGINE_STALL_TIMEOUT * 1000,
    selection,
    timeZone: config.TZ,
    publish,
    publishProgress: (progress: BackupProgress) => {
      // Core NATS, no ack awaited: progress is for whoever watches now; a closed connection only loses a tick.
      try {
        nc.publish(subjects.progress.backup(host), JSON.stringify(progress));
      } catch (err) {
        logger.debug({ err }, "could not publish backup progress");
      }
    },
    progressIntervalMs: deps.progressIntervalMs,
    publishChain,
    logger,
    chainFiles: deps.chainFiles,
    policyOf,
  });
  const leases = await createChainLeases(nc, {
    holder: `backup-agent@${host}#${process.pid}`,
    // The work is done (or failed on its own): a release lost to a NATS hiccup is no failure of it.
    onReleaseError: (err, key) => logger.warn({ err, key }, "could not release a chain lease; it expires after its TTL"),
  });
  const runExclusive = createChainGuard(createDomainQueue(), leases, rootId);
  // Aborted on stop (or a stop during start-up), so a full started by a chain check is cancelled like any run.
  const stopping = new AbortController();
  const stop = () => stopping.abort(new Error("the agent is shutting down"));
  deps.signal?.addEventListener("abort", stop, { once: true });
  const checker = await createChainChecker({
    config,
    nc,
    libvirt,
    logger,
    publish: publishChain,
    chainFiles: deps.chainFiles,
    runFull: async (domain, signal) => (await runBackup({ domain, level: "full", signal: signal ? AbortSignal.any([stopping.signal, signal]) : stopping.signal })).ok,
  });
  const scheduledDomains = async () => (await inventory.refresh()).domains.filter((d) => d.scheduled).map((d) => d.name);
  // One lookup instead of a full inventory: this runs before every backup.
  const lookup = async (domain: string) => (!selection.scheduled(domain) ? undefined : libvirt.domainInfo(domain));
  const guardedBackup = createGuardedBackup({ host, backupRoot: config.LOCAL_BACKUP_PATH, checker, runBackup, publishFailed: publish, logger });

  const upkeep = createChainUpkeep({ config, policyOf, libvirt, leases, rootId, publish: publishChain, logger, chainFiles: deps.chainFiles });

  // Chains are made consistent before any backup command is taken (issue 3 items 3 and 7).
  await runStartupChecks({ checker, libvirt, runExclusive, logger, autostart: config.VM_AUTOSTART_LIST, signal: stopping.signal }, await scheduledDomains());

  // A silent agent's commands come back after this long; a working one keeps them alive (consumeDurable).
  const ackWaitMs = config.VMBS_COMMAND_ACK_WAIT * 1000;
  const chainCommand = (
    verb: "check" | "rotate" | "retention",
    runForDomain: ChainCommandDeps["runForDomain"],
    more: Pick<ChainCommandDeps, "doneBefore" | "planForDomain"> = {},
  ) =>
    consumeDurable(nc, {
      ...agentDurable(verb, host, ackWaitMs),
      handler: journal.idempotent(createChainCommandHandler({ verb, runForDomain, ...more, publish: publishChain, runExclusive, scheduledDomains, logger })),
      onError: (err, msg) => logger.error({ err, seq: msg?.seq }, `${verb} command handling failed`),
    });
  const consumers: DurableConsumer[] = [
    await consumeDurable(nc, {
      ...agentDurable("backup", host, ackWaitMs),
      handler: journal.idempotent(
        createBackupCommandHandler({ host, logger, inventory, lookup, scheduledDomains, upkeep, guardedBackup, runExclusive, publish, announce: journal.announce, runEvents }),
      ),
      onError: (err, msg) => logger.error({ err, seq: msg?.seq }, "command handling failed"),
    }),
    await chainCommand("check", (domain, requestId, leaseLost) => checker.check({ domain, trigger: "command", requestId, integrity: true, newChain: "run", signal: leaseLost })),
    // A rotate command starts a new chain now (the next backup is a full), whatever the chain's length.
    await chainCommand(
      "rotate",
      (domain, requestId) => upkeep.rotate(domain, "command", true, requestId),
      { doneBefore: (domain, interrupted) => rotationDone(host, interrupted, domain) },
    ),
    await chainCommand("retention", (domain, requestId) => upkeep.retain(domain, "command", requestId), {
      planForDomain: (domain, requestId) => upkeep.planRetention(domain, "command", requestId),
    }),
  ];
  logger.info({ subjects: ["backup", "check", "rotate", "retention"].map((v) => `vmbs.cmd.${v}.${host}`) }, "backup agent serving");

  return {
    async stop() {
      inventory.stop();
      stop();
      await Promise.all(consumers.map((c) => c.stop()));
      await outbox.close(outboxDrainOnStopMs);
      await libvirt.close();
      logger.info("backup agent stopped");
    },
  };
}

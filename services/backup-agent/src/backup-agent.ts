import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { backupCommandSchema, parsePayload } from "@vmbs/contracts";
import {
  agentDurable,
  consumeDurable,
  createBackupEventPublisher,
  createChainEventPublisher,
  createChainGuard,
  createChainLeases,
  createCommandJournal,
  createDomainQueue,
  ensureStreams,
  jetStreamSender,
  LeaseBusyError,
  openCommandOutcomeStore,
  openCommandOutcomesBucket,
  openEventOutbox,
  openHostsBucket,
  type DurableConsumer,
  type CommandContext,
  type CommandRun,
  type JsMsg,
  type NatsConnection,
  type OutboxEvent,
} from "@vmbs/bus";
import { createLibvirt, detectEngine, filterExtraArgs, type Libvirt } from "@vmbs/virt";
import type { Config } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { assertBackupRoot } from "./backup-root.js";
import { answerFor, createBackupQueue } from "./backup-queue.js";
import { createBackupRunner } from "./backup-runner.js";
import { createChainChecker } from "./chain-check/chain-checker.js";
import { createChainCommandHandler, requestIdOf, type ChainCommandDeps } from "./chain-commands.js";
import { createGuardedBackup } from "./chain-check/guarded-backup.js";
import { runStartupChecks } from "./chain-check/startup-checks.js";
import { createInventory } from "./inventory.js";
import { applyRetention } from "./rotation/apply-retention.js";
import { backupRootId, calendarPolicyOf, type FileLister } from "@vmbs/chain";
import { rotateChain } from "./rotation/rotate-chain.js";
import { resumeBackup, rotationDone } from "./resume-rules.js";

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
    | "MAX_BACKUPS_PER_CHAIN"
    | "LOCAL_BACKUP_CHAINS_TO_KEEP"
    | "LOCAL_RETENTION_DAYS"
    | "LOCAL_RETENTION_WEEKS"
    | "LOCAL_RETENTION_MONTHS"
    | "VMBS_LIBVIRT_TIMEOUT"
    | "VMBS_ENGINE_STALL_TIMEOUT"
    | "VMBS_COMMAND_ACK_WAIT"
    | "VMBS_STATE_DIR"
  >;
  nc: NatsConnection;
  logger: Logger;
  agentVersion?: string;
  /** Heartbeat period of the host inventory. Default 30 s. */
  heartbeatMs?: number;
  /** Aborts a long start-up (chain checks, first full backups) when the process is asked to stop. */
  signal?: AbortSignal;
  /** Where chain folders are read: the local disk by default (a test counts the reads of one backup). */
  chainFiles?: FileLister;
}

export interface BackupAgent {
  stop(): Promise<void>;
}

/** The agent's own state: `$VMBS_STATE_DIR/agent/<host>/` (event outbox, command outcomes). */
export function agentStateDir(stateDir: string, host: string): string {
  return join(stateDir, "agent", host);
}

/** How long a stopping agent keeps trying to publish its outbox before leaving the rest for its next start. */
const outboxDrainOnStopMs = 3_000;
/** Backup commands one domain may hold (waiting or running); the next ones are refused until it holds fewer. */
const backupCommandsPerDomain = 8;
/** Backups of different domains at once: the 4 the backup consumer used to take at a time. */
const backupsAtOnce = 4;

/**
 * The per-host agent: serves `vmbs.cmd.backup.<host>`, runs virtnbdbackup, announces every outcome.
 * Every event leaves through a durable outbox and every command through a journal of outcomes, so a lost ack
 * or a NATS restart neither repeats a backup nor loses its events.
 */
export async function startBackupAgent(deps: BackupAgentDeps): Promise<BackupAgent> {
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

  await ensureStreams(nc);
  const hosts = await openHostsBucket(nc);
  const libvirt: Libvirt = createLibvirt(config.LIBVIRT_URI, { timeoutMs: config.VMBS_LIBVIRT_TIMEOUT * 1000 });
  const ignoredDomains = new Set(config.VM_IGNORED_LIST);
  const inventory = createInventory({ host, libvirt, hosts, ignoredDomains, agentVersion: deps.agentVersion ?? "0.1.0", logger, intervalMs: deps.heartbeatMs });
  await inventory.start();

  const stateDir = agentStateDir(config.VMBS_STATE_DIR, host);
  const outbox = await openEventOutbox({
    dir: stateDir,
    send: jetStreamSender(nc),
    // The first failure of an event and then every 20th: a NATS restart is a handful of lines, not hundreds.
    onError: (err, event, attempt) => {
      if (attempt <= 1 || attempt % 20 === 0) logger.warn({ err, subject: event?.subject, msgId: event?.msgId, attempt }, "event not published yet: kept in the outbox");
    },
  });
  // Publish what waited as soon as the connection is back, not at the end of the current backoff.
  void (async () => {
    for await (const status of nc.status()) if (status.type === "reconnect") outbox.wake();
  })().catch((err: unknown) => logger.debug({ err }, "connection status watch ended"));
  const journal = createCommandJournal({
    host,
    outbox,
    store: await openCommandOutcomeStore({
      dir: join(stateDir, "commands"),
      kv: await openCommandOutcomesBucket(nc),
      onError: (err, key) => logger.warn({ err, key }, "command outcome not shared in KV (the local record holds it)"),
    }),
    onReplay: (record) => logger.info({ subject: record.subject, identity: record.identity, events: record.events.length }, "redelivered command answered from its recorded outcome"),
  });
  // One publisher per event kind for this whole agent (libs/bus publish-events.ts), both through the journal's
  // outbox: every chain event — the runner's, the checker's, rotation's and retention's — and every backup event.
  // The backup events of one queued run, for the commands that joined it (see handleBackup).
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
    ignoredDomains,
    timeZone: config.TZ,
    publish,
    publishChain,
    logger,
    chainFiles: deps.chainFiles,
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
  const lookup = async (domain: string) => (ignoredDomains.has(domain) ? undefined : libvirt.domainInfo(domain));
  const guardedBackup = createGuardedBackup({ host, backupRoot: config.LOCAL_BACKUP_PATH, checker, runBackup, publishFailed: publish, logger });

  const rotationDeps = {
    backupRoot: config.LOCAL_BACKUP_PATH,
    host,
    domainNames: async () => (await libvirt.listPersistentDomains()).map((d) => d.name),
    // An archive is deleted under its own folder's lease too: a holder means someone writes it as a chain.
    lockFolder: async (name: string) => {
      try {
        const lease = await leases.acquire(rootId, name, { op: "retention" });
        return () => lease.release();
      } catch (err) {
        if (err instanceof LeaseBusyError) return undefined;
        throw err;
      }
    },
    logger,
    timeZone: config.TZ,
    publish: publishChain,
    chainFiles: deps.chainFiles,
  };
  const retention = {
    keep: config.LOCAL_BACKUP_CHAINS_TO_KEEP,
    calendar: calendarPolicyOf(config.LOCAL_RETENTION_DAYS, config.LOCAL_RETENTION_WEEKS, config.LOCAL_RETENTION_MONTHS),
  };
  const rotate = (domain: string, trigger: string, force: boolean, requestId?: string) =>
    rotateChain(rotationDeps, { domain, maxBackupsPerChain: config.MAX_BACKUPS_PER_CHAIN, ...retention, force, trigger, requestId });

  // Chains are made consistent before any backup command is taken (issue 3 items 3 and 7).
  await runStartupChecks({ checker, libvirt, runExclusive, logger, autostart: config.VM_AUTOSTART_LIST, signal: stopping.signal }, await scheduledDomains());

  // A run's backup events; undefined when the agent stopped before the run's turn came.
  const backups = createBackupQueue<OutboxEvent[] | undefined>({ maxPerDomain: backupCommandsPerDomain, maxRunning: backupsAtOnce });
  const handleBackup = async (msg: JsMsg, ctx: CommandContext, run: CommandRun) => {
    const parsed = parsePayload(backupCommandSchema, msg.data);
    if (!parsed.ok) {
      logger.warn({ seq: msg.seq, reason: parsed.reason }, "rejected a backup command");
      await publish({ type: "failed", host, requestId: requestIdOf(msg.data), runId: `msg-${msg.seq}`, reason: parsed.reason, at: new Date().toISOString() });
      return "term" as const;
    }
    const cmd = parsed.value;
    const targets = cmd.domain ? [cmd.domain] : await scheduledDomains();
    for (const domain of targets) {
      // Stopping: the command comes back at the next start, which skips the domains it finished (resumeBackup).
      if (ctx.signal.aborted) return "retry" as const;
      const resume = resumeBackup(host, run.interrupted, domain, cmd.level);
      if (run.interrupted) logger.warn({ domain, identity: run.identity, decision: resume }, "resuming an interrupted backup command");
      if (resume.kind === "skip") continue;
      const backupOne = async (leaseLost: AbortSignal) => {
        // The inventory (refreshed every heartbeat) answers "is it one of ours" without a libvirt round trip; a
        // domain it does not list yet (defined since the last beat) is looked up. The state comes from the check.
        const listed = inventory.current()?.domains.find((d) => d.name === domain);
        const known = listed?.scheduled ? undefined : await lookup(domain);
        const scheduled = listed?.scheduled === true || Boolean(known?.persistent);
        // A chain at MAX_BACKUPS_PER_CHAIN is archived first, so this run starts the next chain. Otherwise the
        // folder as rotation read it is handed on: under the lease nothing else writes it, so that one read serves
        // the check and the run.
        const rotation = scheduled ? await rotate(domain, "before-backup", false, cmd.requestId) : undefined;
        const request = { domain, level: resume.level, requestId: cmd.requestId, signal: AbortSignal.any([ctx.signal, leaseLost]), known, knownFolder: rotation?.unchanged };
        await guardedBackup(request, scheduled);
        // A check after a failure may have archived the chain: keep the archives within bounds (while it is ours).
        if (scheduled && !leaseLost.aborted) await applyRetention(rotationDeps, { domain, ...retention, trigger: "after-backup", requestId: cmd.requestId });
      };
      const events: OutboxEvent[] = [];
      const admission = backups(domain, resume.level, async () => {
        if (ctx.signal.aborted) return undefined;
        return runEvents.run(events, async () => {
          await runExclusive(domain, backupOne).catch(async (err: unknown) => {
            logger.error({ err, domain }, "backup run crashed");
            // A run id of its own: the event's message id derives from it, and one command may fail for several domains.
            await publish({ type: "failed", host, domain, requestId: cmd.requestId, runId: randomUUID(), reason: `internal error: ${(err as Error).message}`, at: new Date().toISOString() });
          });
          return events;
        });
      });
      if (admission.kind === "refused") {
        // The first refusal of a flood and every 100th: the events name each one.
        if (admission.refusedInFlood === 1 || admission.refusedInFlood % 100 === 0)
          logger.warn({ domain, held: admission.held, refused: admission.refusedInFlood }, "backup commands refused: the domain holds as many as it may");
        const reason = `refused: ${domain} already has ${admission.held} backup commands waiting or running on ${host} (the most one domain may hold); this one was not queued`;
        await publish({ type: "failed", host, domain, requestId: cmd.requestId, runId: randomUUID(), reason, refused: true, at: new Date().toISOString() });
        continue;
      }
      const answer = await admission.result;
      // The agent stopped before this run's turn: back at the next start, not answered by a run cancelled on the spot.
      if (!answer) return "retry" as const;
      // Joined a run started by an earlier command: its events, announced (and recorded) as this command's too.
      if (admission.joined) for (const event of answer) await journal.announce(answerFor(event, cmd.requestId, run.key));
    }
    return "ack" as const;
  };

  // A silent agent's commands come back after this long; a working one keeps them alive (consumeDurable).
  const ackWaitMs = config.VMBS_COMMAND_ACK_WAIT * 1000;
  const chainCommand = (verb: "check" | "rotate" | "retention", runForDomain: ChainCommandDeps["runForDomain"], doneBefore?: ChainCommandDeps["doneBefore"]) =>
    consumeDurable(nc, {
      ...agentDurable(verb, host, ackWaitMs),
      handler: journal.idempotent(createChainCommandHandler({ verb, runForDomain, doneBefore, publish: publishChain, runExclusive, scheduledDomains, logger })),
      onError: (err, msg) => logger.error({ err, seq: msg?.seq }, `${verb} command handling failed`),
    });
  const consumers: DurableConsumer[] = [
    await consumeDurable(nc, {
      ...agentDurable("backup", host, ackWaitMs),
      handler: journal.idempotent(handleBackup),
      onError: (err, msg) => logger.error({ err, seq: msg?.seq }, "command handling failed"),
    }),
    await chainCommand("check", (domain, requestId, leaseLost) => checker.check({ domain, trigger: "command", requestId, integrity: true, newChain: "run", signal: leaseLost })),
    // A rotate command starts a new chain now (the next backup is a full), whatever the chain's length.
    await chainCommand(
      "rotate",
      (domain, requestId) => rotate(domain, "command", true, requestId),
      (domain, interrupted) => rotationDone(host, interrupted, domain),
    ),
    await chainCommand("retention", (domain, requestId) => applyRetention(rotationDeps, { domain, ...retention, trigger: "command", requestId })),
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

import { backupRootId, claimAgentPresence, durablesOf, setUpBus, type AgentPresence, type NatsConnection } from "@vmbs/bus";
import { assertBackupRoot, startBackupAgent } from "@vmbs/backup-agent";
import { startScheduler } from "@vmbs/scheduler";
import { join } from "node:path";
import { checkRedis, startNotifier, startRedisServer, type RunningRedisServer } from "@vmbs/notifier";
import { startMirror } from "@vmbs/mirror";
import { startRestoreService } from "@vmbs/restore";
import type { BusRole } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { openBus, serviceRuntime, untilSignal, type Bus } from "../runtime.js";
import { startLogRotation } from "../log-rotation-job.js";
import { describeExit, LocalNatsServerDiedError, LocalRedisServerDiedError, MirrorNotConfiguredError, NotifierSetupError, PresenceLostError } from "../exit-reasons.js";

export type ServeRole = "start" | "agent" | "scheduler" | "notifier" | "mirror-service" | "restore-service";

/** How long each step of a stop may take when the bus is gone (requests would otherwise wait for a reconnect). */
const stopStepMs = 10_000;

async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Logs why the process stops and prints the one line a person reads; returns the exit status. */
function report(logger: Logger, err: unknown, what: string): number {
  const { line, status } = describeExit(err);
  logger.fatal({ err, status }, what);
  logger.flush();
  process.stderr.write(`${line}\n`);
  return status;
}

/**
 * Runs long-lived services until SIGINT/SIGTERM: `start` = scheduler + agent + restore service (+ notifier when
 * NOTIFY_URLS is set, + the mirror when RSYNC_BACKUP_PATH or MIRROR_RCLONE_TARGETS is set) in one process (and a
 * local nats-server when NATS_URL is unset), `agent`, `scheduler`, `notifier`, `mirror-service` or `restore-service`
 * alone for a fleet.
 *
 * Every reason to refuse — backup path, NATS, another agent with this HOST_ID — is checked before a
 * scheduler, timer or consumer runs, so a refusal leaves nothing behind (a local nats-server started for the
 * presence check is stopped again).
 */
export async function serve(role: ServeRole): Promise<number> {
  let runtime: ReturnType<typeof serviceRuntime>;
  try {
    runtime = serviceRuntime(`vmbs-${role}`);
  } catch (err) {
    const { line, status } = describeExit(err);
    process.stderr.write(`${line}\n`);
    return status;
  }
  const { config, logger, reopenLog } = runtime;
  const servesAgent = role === "start" || role === "agent";
  const servesNotifier = role === "notifier" || (role === "start" && config.NOTIFY_URLS.length > 0);
  const mirrorConfigured = config.RSYNC_BACKUP_PATH !== undefined || config.MIRROR_RCLONE_TARGETS.length > 0;
  const servesMirror = role === "mirror-service" || (role === "start" && mirrorConfigured);
  const servesRestore = role === "start" || role === "restore-service";
  // Listen before start-up: a SIGTERM during a long start-up (chain checks) must still end in a clean stop.
  const signalled = untilSignal();
  const startup = new AbortController();
  void signalled.then(() => startup.abort());

  const agentRole: BusRole = { kind: "agent", host: config.HOST_ID };
  const schedulerRole: BusRole = { kind: "scheduler" };
  const notifierRole: BusRole = { kind: "notifier" };
  const mirrorRole: BusRole = { kind: "mirror", host: config.HOST_ID };
  // `start` also serves this host's restore endpoints, with the restore role's own credentials.
  const restoreRole: BusRole = { kind: "restore", host: config.HOST_ID };
  const soloRoles: Partial<Record<ServeRole, BusRole>> = {
    agent: agentRole,
    scheduler: schedulerRole,
    notifier: notifierRole,
    "mirror-service": mirrorRole,
    "restore-service": restoreRole,
  };
  const solo = soloRoles[role];
  const roles: BusRole[] = solo ? [solo] : [schedulerRole, agentRole, restoreRole];
  if (role === "start" && servesNotifier) roles.push(notifierRole);
  if (role === "start" && servesMirror) roles.push(mirrorRole);

  let bus: Bus | undefined;
  let presence: AgentPresence | undefined;
  let agentNc: NatsConnection | undefined;
  let schedulerNc: NatsConnection | undefined;
  let notifierNc: NatsConnection | undefined;
  let mirrorNc: NatsConnection | undefined;
  let redis: RunningRedisServer | undefined;
  let restoreNc: NatsConnection | undefined;
  let redisUrl = config.REDIS_URL;
  let rootId: string | undefined;
  try {
    if (role === "mirror-service" && !mirrorConfigured) throw new MirrorNotConfiguredError();
    if (servesNotifier) {
      if (config.NOTIFY_URLS.length === 0) throw new NotifierSetupError("NOTIFY_URLS is empty — name at least one target (see README, Notifications)");
      if (redisUrl) await checkRedis(redisUrl);
    }
    if (servesAgent || servesMirror || servesRestore) {
      await assertBackupRoot(config.LOCAL_BACKUP_PATH);
      // Creates the root's marker on first use, or reads it: a corrupt one is a refusal like a bad path.
      rootId = await backupRootId(config.LOCAL_BACKUP_PATH, config.HOST_ID);
    }
    bus = await openBus(config, logger, roles, role === "start", rootId);
    // Streams, buckets and durables exist before any role binds to them (roles may not make them).
    const setup = await bus.connectForSetup(roles[0]!);
    const { drifted } = await setUpBus(setup, { durables: durablesOf(roles, { commandAckWaitMs: config.VMBS_COMMAND_ACK_WAIT * 1000 }) });
    await setup.close();
    if (drifted.length > 0) logger.warn({ streams: drifted }, "stream config differs from this version's; run vmbs bus setup with the operator's credential to update it");
    // Connecting now (each role with its own credentials) tells an unreachable NATS_URL before anything runs.
    if (role === "start" || role === "scheduler") schedulerNc = await bus.connect(schedulerRole, `vmbs-scheduler-${config.HOST_ID}`);
    if (servesNotifier) notifierNc = await bus.connect(notifierRole, `vmbs-notifier-${config.HOST_ID}`);
    // Like NATS: without REDIS_URL the notifier gets a redis-server of its own (stopped again by any later refusal).
    if (servesNotifier && !redisUrl) redisUrl = (redis = await startRedisServer(join(config.VMBS_STATE_DIR, "redis"))).url;
    if (servesAgent) {
      agentNc = await bus.connect(agentRole, `vmbs-agent-${config.HOST_ID}`);
      presence = await claimAgentPresence(agentNc, { host: config.HOST_ID });
    }
    // The mirror connects as its own role (mirror-<host>): it may only take this host's mirror commands, its
    // completed backup events and its root's chain leases.
    if (servesMirror) mirrorNc = await bus.connect(mirrorRole, `vmbs-mirror-${config.HOST_ID}`);
    if (servesRestore) restoreNc = await bus.connect(restoreRole, `vmbs-restore-${config.HOST_ID}`);
  } catch (err) {
    await bus?.close();
    await redis?.stop();
    return report(logger, err, "start-up refused");
  }

  const stops: (() => Promise<void>)[] = [startLogRotation(config, logger, reopenLog)];
  const stopAll = async () => {
    for (const stop of stops) await within(stopStepMs, stop());
    await within(stopStepMs, presence?.lease.release() ?? Promise.resolve());
    await within(stopStepMs, bus!.close());
    // close() may have timed out while draining: the local nats-server must not outlive us either way.
    await bus!.server?.stop();
    await redis?.stop();
  };
  try {
    if (schedulerNc) {
      if (!config.BACKUP_SCHEDULE) throw new Error("BACKUP_SCHEDULE is empty");
      const scheduler = await startScheduler({ nc: schedulerNc, schedule: config.BACKUP_SCHEDULE, drillSchedule: config.DRILL_SCHEDULE, timeZone: config.TZ, logger });
      stops.push(() => scheduler.stop());
    }
    if (notifierNc) {
      const notifier = await startNotifier({
        nc: notifierNc,
        targets: config.NOTIFY_URLS,
        redisUrl: redisUrl!,
        sshOptions: config.SSH_OPTIONS,
        unraidHost: config.UNRAID_NOTIFY_HOST,
        staleMs: config.NOTIFY_STALE_HOURS * 3_600_000,
        logger,
      });
      stops.push(() => notifier.stop());
    }
    if (agentNc) {
      const agent = await startBackupAgent({ config, nc: agentNc, logger, signal: AbortSignal.any([startup.signal, presence!.lease.signal]) });
      stops.unshift(() => agent.stop());
    }
    if (mirrorNc) {
      const mirror = await startMirror({ config, nc: mirrorNc, logger });
      stops.unshift(() => mirror.stop());
    }
    if (restoreNc) {
      const restore = await startRestoreService({ config, nc: restoreNc, logger });
      stops.unshift(() => restore.stop());
    }
  } catch (err) {
    await stopAll();
    return report(logger, err, "start-up failed");
  }

  const never = new Promise<never>(() => {});
  const server = bus.server;
  const ended = await Promise.race([
    signalled,
    presence ? presence.lease.lost.then(async (lost) => new PresenceLostError(config.HOST_ID, await presence!.holder().catch(() => undefined), { cause: lost })) : never,
    server ? server.exited.then(({ code, signal }) => new LocalNatsServerDiedError(server.pid, code, signal)) : never,
    redis ? redis.exited.then(({ code, signal }) => new LocalRedisServerDiedError(redis!.pid, code, signal)) : never,
  ]);
  if (typeof ended === "string") {
    logger.info({ signal: ended }, "shutting down");
    await stopAll();
    logger.flush();
    return 0;
  }
  // The services stop first, so no command is half taken; then the reason is told.
  logger.error({ err: ended }, "stopping");
  await stopAll();
  return report(logger, ended, "stopped");
}

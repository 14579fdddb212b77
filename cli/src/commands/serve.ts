import { backupRootId } from "@vmbs/chain";
import { claimAgentPresence, durablesOf, setUpBus, type AgentPresence, type NatsConnection } from "@vmbs/bus";
import { assertBackupRoot, startBackupAgent } from "@vmbs/backup-agent";
import { startScheduler } from "@vmbs/scheduler";
import { join } from "node:path";
import { checkRedis, startNotifier, startRedisServer, type RunningRedisServer } from "@vmbs/notifier";
import { startMirror } from "@vmbs/mirror";
import { startRestoreService } from "@vmbs/restore";
import { createFleetPolicy, startStatusService } from "@vmbs/status";
import type { BusRole } from "@vmbs/contracts";
import { backupRpo, noPolicySource, openPolicySource, type PolicySource } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { openBus, serviceRuntime, untilSignal, type Bus } from "../runtime.js";
import { startLogRotation } from "../log-rotation-job.js";
import { describeExit, LocalNatsServerDiedError, LocalRedisServerDiedError, MirrorNotConfiguredError, NotifierSetupError, PresenceLostError } from "../exit-reasons.js";

export type ServeRole = "start" | "agent" | "scheduler" | "notifier" | "mirror-service" | "restore-service" | "status-service";

/** A service `serve` runs: the bus role it connects as, with that role's own credentials, and how it starts. */
interface ServedService {
  role: BusRole;
  /** Whether this process runs it: the role asked for, and for `start` the settings. */
  serves: boolean;
  /** Runs once connected, before any service starts, so a refusal leaves nothing running. */
  prepare?(nc: NatsConnection): Promise<void>;
  start(nc: NatsConnection): Promise<{ stop(): Promise<void> }>;
}

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
  const servesScheduler = role === "start" || role === "scheduler";
  const servesAgent = role === "start" || role === "agent";
  const servesNotifier = role === "notifier" || (role === "start" && config.NOTIFY_URLS.length > 0);
  const mirrorConfigured = config.RSYNC_BACKUP_PATH !== undefined || config.MIRROR_RCLONE_TARGETS.length > 0;
  const servesMirror = role === "mirror-service" || (role === "start" && mirrorConfigured);
  const servesRestore = role === "start" || role === "restore-service";
  const servesStatus = role === "start" || role === "status-service";
  // Listen before start-up: a SIGTERM during a long start-up (chain checks) must still end in a clean stop.
  const signalled = untilSignal();
  const startup = new AbortController();
  void signalled.then(() => startup.abort());

  let presence: AgentPresence | undefined;
  // VMBS_POLICY_FILE, read once for every service of this process: a bad file refuses the start; a bad change later
  // is logged once and the last good version kept.
  let policies: PolicySource = noPolicySource;
  let redis: RunningRedisServer | undefined;
  let redisUrl = config.REDIS_URL;
  // They start in this order and stop in reverse, so the ones taking commands (agent, mirror, restore) stop
  // first and no command is half taken.
  const services: ServedService[] = [
    {
      role: { kind: "scheduler" },
      serves: servesScheduler,
      start: (nc) => {
        if (!config.BACKUP_SCHEDULE) throw new Error("BACKUP_SCHEDULE is empty");
        return startScheduler({ nc, schedule: config.BACKUP_SCHEDULE, policies, drillSchedule: config.DRILL_SCHEDULE, timeZone: config.TZ, logger });
      },
    },
    {
      role: { kind: "notifier" },
      serves: servesNotifier,
      // Like NATS: without REDIS_URL the notifier gets a redis-server of its own (stopped again by any later refusal).
      prepare: async () => {
        if (!redisUrl) redisUrl = (redis = await startRedisServer(join(config.VMBS_STATE_DIR, "redis"))).url;
      },
      start: (nc) =>
        startNotifier({
          nc,
          targets: config.NOTIFY_URLS,
          redisUrl: redisUrl!,
          sshOptions: config.SSH_OPTIONS,
          unraidHost: config.UNRAID_NOTIFY_HOST,
          logger,
        }),
    },
    // The fleet's status (one per bus; in `start` for a single host): its alarms reach the notifier as events.
    {
      role: { kind: "status" },
      serves: servesStatus,
      start: async (nc) => {
        const rpo = backupRpo(config);
        // A domain's entry in VMBS_POLICY_FILE may give it its own schedule and RPO.
        const policy = createFleetPolicy({ schedule: config.BACKUP_SCHEDULE, timeZone: config.TZ, rpoMinutes: rpo.minutes, staleAlarms: rpo.staleAlarms, policies });
        return startStatusService({ nc, policy, logger, listen: config.VMBS_HTTP_LISTEN });
      },
    },
    {
      role: { kind: "agent", host: config.HOST_ID },
      serves: servesAgent,
      prepare: async (nc) => {
        presence = await claimAgentPresence(nc, { host: config.HOST_ID });
      },
      start: (nc) => startBackupAgent({ config, nc, logger, policies, signal: AbortSignal.any([startup.signal, presence!.lease.signal]) }),
    },
    // The mirror connects as its own role (mirror-<host>): it may only take this host's mirror commands, its
    // completed backup events and its root's chain leases.
    { role: { kind: "mirror", host: config.HOST_ID }, serves: servesMirror, start: (nc) => startMirror({ config, nc, logger, policies }) },
    // `start` also serves this host's restore endpoints, with the restore role's own credentials.
    { role: { kind: "restore", host: config.HOST_ID }, serves: servesRestore, start: (nc) => startRestoreService({ config, nc, logger }) },
  ];
  const served = services.filter((s) => s.serves);
  const roles = served.map((s) => s.role);

  let bus: Bus | undefined;
  const connected: { service: ServedService; nc: NatsConnection }[] = [];
  let rootId: string | undefined;
  try {
    if (role === "mirror-service" && !mirrorConfigured) throw new MirrorNotConfiguredError();
    if (servesNotifier) {
      if (config.NOTIFY_URLS.length === 0) throw new NotifierSetupError("NOTIFY_URLS is empty — name at least one target (see README, Notifications)");
      if (redisUrl) await checkRedis(redisUrl);
    }
    policies = await openPolicySource({
      path: config.VMBS_POLICY_FILE,
      onReload: (p) => logger.info({ file: config.VMBS_POLICY_FILE, entries: p.domains.length }, "policy file reloaded"),
      onError: (err) => logger.error({ problems: err.problems }, `${err.message} — keeping the policy in effect`),
    });
    if (servesAgent || servesMirror || servesRestore) {
      await assertBackupRoot(config.LOCAL_BACKUP_PATH);
      // Creates the root's marker on first use, or reads it: a corrupt one is a refusal like a bad path.
      rootId = await backupRootId(config.LOCAL_BACKUP_PATH, config.HOST_ID);
    }
    bus = await openBus(config, logger, roles, role === "start", rootId);
    // Streams, buckets and durables exist before any role binds to them (roles may not make them).
    const setup = await bus.connectForSetup(roles[0]!);
    const { drifted } = await setUpBus(setup, {
      durables: durablesOf(roles, { commandAckWaitMs: config.VMBS_COMMAND_ACK_WAIT * 1000 }),
      replicas: config.VMBS_STREAM_REPLICAS,
    });
    await setup.close();
    if (drifted.length > 0) logger.warn({ streams: drifted }, "stream config differs from this version's; run vmbs bus setup with the operator's credential to update it");
    // Connecting now (each role with its own credentials) tells an unreachable NATS_URL, or another agent with
    // this HOST_ID, before anything runs.
    for (const service of served) {
      const nc = await bus.connect(service.role, `vmbs-${service.role.kind}-${config.HOST_ID}`);
      await service.prepare?.(nc);
      connected.push({ service, nc });
    }
  } catch (err) {
    policies.close();
    await bus?.close();
    await redis?.stop();
    return report(logger, err, "start-up refused");
  }

  const stops: (() => Promise<void>)[] = [startLogRotation(config, logger, reopenLog)];
  const stopAll = async () => {
    for (const stop of stops.toReversed()) await within(stopStepMs, stop());
    await within(stopStepMs, presence?.lease.release() ?? Promise.resolve());
    await within(stopStepMs, bus!.close());
    // close() may have timed out while draining: the local nats-server must not outlive us either way.
    await bus!.server?.stop();
    await redis?.stop();
    policies.close();
  };
  try {
    for (const { service, nc } of connected) {
      const handle = await service.start(nc);
      stops.push(() => handle.stop());
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

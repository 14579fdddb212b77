import { openHostsBucket, ensureStreams } from "@vmbs/bus";
import { startBackupAgent, BackupRootError } from "@vmbs/backup-agent";
import { createScheduler } from "@vmbs/scheduler";
import { configErrorExitCode } from "@vmbs/config";
import type { BusRole } from "@vmbs/contracts";
import { BusCredentialsError } from "../bus-auth.js";
import { openBus, serviceRuntime, untilSignal, type Bus } from "../runtime.js";
import { startLogRotation } from "../log-rotation-job.js";

export type ServeRole = "start" | "agent" | "scheduler";

/**
 * Runs long-lived services until SIGINT/SIGTERM: `start` = scheduler + agent in one process (and a local
 * nats-server when NATS_URL is unset), `agent` or `scheduler` alone for a fleet.
 */
export async function serve(role: ServeRole): Promise<number> {
  const { config, logger, reopenLog } = serviceRuntime(`vmbs-${role}`);
  // Listen before start-up: a SIGTERM during a long start-up (chain checks) must still end in a clean stop.
  const signalled = untilSignal();
  const startup = new AbortController();
  void signalled.then(() => startup.abort());
  const agentRole: BusRole = { kind: "agent", host: config.HOST_ID };
  const schedulerRole: BusRole = { kind: "scheduler" };
  const roles = role === "agent" ? [agentRole] : role === "scheduler" ? [schedulerRole] : [schedulerRole, agentRole];
  let bus: Bus;
  try {
    bus = await openBus(config, logger, roles, role === "start");
  } catch (err) {
    if (!(err instanceof BusCredentialsError)) throw err;
    process.stderr.write(`vm-babysitter: ${err.message}\n`);
    return configErrorExitCode;
  }
  const stops: (() => Promise<void>)[] = [startLogRotation(config, logger, reopenLog)];
  try {
    const setup = await bus.connectForSetup(roles[0]!);
    const { drifted } = await ensureStreams(setup);
    await setup.close();
    if (drifted.length > 0) logger.warn({ streams: drifted }, "stream config differs from this version's; an operator should run with operator credentials to update it");
    if (role !== "agent") {
      if (!config.BACKUP_SCHEDULE) throw new Error("BACKUP_SCHEDULE is empty");
      const nc = await bus.connect(schedulerRole, `vmbs-scheduler-${config.HOST_ID}`);
      const scheduler = createScheduler({ nc, hosts: await openHostsBucket(nc), schedule: config.BACKUP_SCHEDULE, timeZone: config.TZ, logger });
      scheduler.start();
      stops.push(() => scheduler.stop());
    }
    if (role !== "scheduler") {
      const nc = await bus.connect(agentRole, `vmbs-agent-${config.HOST_ID}`);
      const agent = await startBackupAgent({ config, nc, logger, signal: startup.signal });
      stops.unshift(() => agent.stop());
    }
  } catch (err) {
    logger.fatal({ err }, "start-up failed");
    for (const stop of stops) await stop();
    await bus.close();
    return err instanceof BackupRootError ? configErrorExitCode : 1;
  }
  const signal = await signalled;
  logger.info({ signal }, "shutting down");
  for (const stop of stops) await stop();
  await bus.close();
  logger.flush();
  return 0;
}

import { openHostsBucket, ensureStreams } from "@vmbs/bus";
import { startBackupAgent, BackupRootError } from "@vmbs/backup-agent";
import { createScheduler } from "@vmbs/scheduler";
import { configErrorExitCode } from "@vmbs/config";
import { openBus, serviceRuntime, untilSignal } from "../runtime.js";
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
  const bus = await openBus(config, logger, `vmbs-${role}-${config.HOST_ID}`, role === "start");
  const stops: (() => Promise<void>)[] = [startLogRotation(config, logger, reopenLog)];
  try {
    await ensureStreams(bus.nc);
    if (role !== "agent") {
      if (!config.BACKUP_SCHEDULE) throw new Error("BACKUP_SCHEDULE is empty");
      const scheduler = createScheduler({ nc: bus.nc, hosts: await openHostsBucket(bus.nc), schedule: config.BACKUP_SCHEDULE, timeZone: config.TZ, logger });
      scheduler.start();
      stops.push(() => scheduler.stop());
    }
    if (role !== "scheduler") {
      const agent = await startBackupAgent({ config, nc: bus.nc, logger, signal: startup.signal });
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

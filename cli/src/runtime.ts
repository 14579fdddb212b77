import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { connectBus, startNatsServer, type NatsConnection, type RunningNatsServer } from "@vmbs/bus";
import { loadConfigOrExit, type Config } from "@vmbs/config";
import { createProcessLogger, type Logger } from "@vmbs/logger";
import { LocalNatsServerError, LogFileError } from "./exit-reasons.js";

/** Where `agent`, `scheduler` and `backup` look for NATS when NATS_URL is unset: the server `vmbs start` runs. */
export function natsUrlOf(config: Config): string {
  return config.NATS_URL ?? `nats://127.0.0.1:${config.VMBS_LOCAL_NATS_PORT}`;
}

/** Config and the process logger of a long-running service; exits 78 on a bad config, throws a LogFileError. */
export function serviceRuntime(name: string): { config: Config; logger: Logger; reopenLog: () => void } {
  const config = loadConfigOrExit(process.env);
  if (config.TZ) process.env.TZ = config.TZ;
  try {
    const { logger, reopenFile } = createProcessLogger({ name, level: config.LOG_LEVEL, file: config.LOGFILE_PATH });
    return { config, logger, reopenLog: reopenFile };
  } catch (err) {
    throw new LogFileError(config.LOGFILE_PATH, { cause: err });
  }
}

export interface Bus {
  nc: NatsConnection;
  /** Present when this process started its own nats-server. */
  server?: RunningNatsServer;
  close(): Promise<void>;
}

/** Connects to NATS_URL, or (`ownServer`) starts a local nats-server with JetStream when NATS_URL is unset. */
export async function openBus(config: Config, logger: Logger, clientName: string, ownServer: boolean): Promise<Bus> {
  let server: RunningNatsServer | undefined;
  if (ownServer && !config.NATS_URL) {
    const storeDir = join(config.VMBS_STATE_DIR, "nats");
    mkdirSync(storeDir, { recursive: true });
    server = await startNatsServer({ storeDir, port: config.VMBS_LOCAL_NATS_PORT }).catch((err: unknown) => {
      throw new LocalNatsServerError(config.VMBS_LOCAL_NATS_PORT, { cause: err });
    });
    logger.info({ url: server.url, storeDir }, "started a local nats-server (NATS_URL is unset)");
  }
  const url = server?.url ?? natsUrlOf(config);
  const nc = await connectBus(url, clientName).catch(async (err: unknown) => {
    await server?.stop();
    throw err;
  });
  logger.info({ url }, "connected to NATS");
  return {
    nc,
    server,
    async close() {
      await nc.drain().catch(() => undefined);
      await server?.stop();
    },
  };
}

/**
 * Resolves on the first SIGINT or SIGTERM. The listeners stay installed: execa's exit hook (signal-exit)
 * re-raises a signal when it finds no other listener, which would kill the process in the middle of its
 * graceful stop.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.on("SIGINT", resolve);
    process.on("SIGTERM", resolve);
  });
}

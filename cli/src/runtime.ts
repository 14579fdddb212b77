import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { authFileNames, connectBus, type BusAuth, type NatsConnection } from "@vmbs/bus";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { ConfigError, loadConfig, type Config } from "@vmbs/config";
import { roleId, type BusRole } from "@vmbs/contracts";
import { createProcessLogger, type Logger } from "@vmbs/logger";
import { credentialsOf, ensureLocalAuth, hasAuthConfig, localAuthDir, localAuthInUse, localMaxFileStoreBytes } from "./bus-auth.js";
import { configErrorLines, exitStatus, LocalNatsServerError, LogFileError } from "./exit-reasons.js";

/** Where `agent`, `scheduler` and `backup` look for NATS when NATS_URL is unset: the server `vmbs start` runs. */
export function natsUrlOf(config: Config): string {
  return config.NATS_URL ?? `nats://127.0.0.1:${config.VMBS_LOCAL_NATS_PORT}`;
}

/** The config, or one readable line per invalid variable on stderr and exit 78. */
export function loadConfigOrExit(env: Record<string, string | undefined>): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(configErrorLines(err, env).map((line) => `${line}\n`).join(""));
    process.exit(exitStatus.config);
  }
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
  /** A connection as one of the roles given to {@link openBus}, with that role's credentials. */
  connect(role: BusRole, clientName: string): Promise<NatsConnection>;
  /**
   * A connection for set-up (streams): the operator's when this process runs an auth-enabled local server,
   * else `role`'s. Closed by {@link Bus.close}.
   */
  connectForSetup(role: BusRole): Promise<NatsConnection>;
  /** Present when this process started its own nats-server. */
  server?: RunningNatsServer;
  close(): Promise<void>;
}

/**
 * Connects to NATS_URL, or (`ownServer`) starts a local nats-server with JetStream when NATS_URL is unset — with
 * the authorization config of `$VMBS_STATE_DIR/auth`, generated on first start (see `ensureLocalAuth`), each role
 * then connecting with its own credential from there. Every credential is read before anything starts (a
 * `BusCredentialsError` names the setting).
 */
export async function openBus(config: Config, logger: Logger, roles: BusRole[], ownServer: boolean, backupRootId?: string): Promise<Bus> {
  const local = ownServer && !config.NATS_URL;
  if (local) {
    const state = await ensureLocalAuth(config, backupRootId);
    if (state === "generated") logger.info({ dir: localAuthDir(config) }, "generated this host's bus credentials for the local nats-server (vmbs auth init)");
    if (state === "refreshed") logger.info({ dir: localAuthDir(config) }, "brought the auth folder's roles up to this version (same credentials)");
    if (state === "insecure")
      logger.warn("VMBS_INSECURE_BUS is set: the local nats-server runs WITHOUT authorization — any local user or container can command backups and restores");
  }
  const authDir = localAuthInUse(config);
  // The operator sets up the streams when the credentials come from the auth folder.
  const setupRoles: BusRole[] = authDir ? [{ kind: "operator" }] : [];
  const auths = new Map<string, BusAuth>();
  for (const role of [...roles, ...setupRoles]) auths.set(roleId(role), await credentialsOf(config, role));

  let server: RunningNatsServer | undefined;
  if (local) {
    const storeDir = join(config.VMBS_STATE_DIR, "nats");
    mkdirSync(storeDir, { recursive: true });
    // The folder's config is enforced whenever it exists, also when the clients bring explicit NATS_* credentials.
    const configFile = hasAuthConfig(localAuthDir(config)) ? join(localAuthDir(config), authFileNames.serverConfig) : undefined;
    server = await startNatsServer({ storeDir, port: config.VMBS_LOCAL_NATS_PORT, configFile, maxFileStoreBytes: localMaxFileStoreBytes(config) }).catch((err: unknown) => {
      throw new LocalNatsServerError(config.VMBS_LOCAL_NATS_PORT, { cause: err });
    });
    logger.info({ url: server.url, storeDir, authConfig: configFile ?? null }, "started a local nats-server (NATS_URL is unset)");
  }
  const url = server?.url ?? natsUrlOf(config);
  const connections: NatsConnection[] = [];
  const connect = async (role: BusRole, clientName: string): Promise<NatsConnection> => {
    const auth = auths.get(roleId(role));
    if (!auth) throw new Error(`openBus was not given the role ${roleId(role)}`);
    const nc = await connectBus(url, clientName, auth);
    connections.push(nc);
    // The logger shows `url` without its credentials.
    logger.info({ url, role: roleId(role) }, "connected to NATS");
    return nc;
  };
  return {
    connect,
    connectForSetup: (role) => (authDir ? connect({ kind: "operator" }, "vmbs-setup") : connect(role, "vmbs-setup")),
    server,
    async close() {
      for (const nc of connections) await nc.drain().catch(() => undefined);
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

import { Svcm } from "@nats-io/services";
import { randomUUID } from "node:crypto";
import { consumeDurable, createChainLeases, drillDurable, publishJson, type NatsConnection } from "@vmbs/bus";
import { backupRootId } from "@vmbs/chain";
import type { Config } from "@vmbs/config";
import { eventMessageId, restoreEndpointMetadata, restoreServiceName, subjects, type RestoreEndpoint, type RestoreEvent } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { createLibvirt } from "@vmbs/virt";
import { realPathOf } from "./confine.js";
import { createEndpointHandlers } from "./endpoint-handlers.js";
import { createDrillCommandHandler, drillScratchRoot } from "./handle-drill-command.js";
import { createRestoreRequestHandler } from "./handle-restore-request.js";
import { createInstantLeases } from "./instant-leases.js";
import { instantRecordsDir, openInstantRecords } from "./instant-record.js";
import { recoverInstantVms } from "./instant-recovery.js";

export interface RestoreServiceDeps {
  config: Pick<Config, "HOST_ID" | "LOCAL_BACKUP_PATH" | "LIBVIRT_URI" | "VM_WAIT_TIME" | "TZ" | "DRILL_SCRATCH_PATH" | "SSH_OPTIONS" | "VMBS_STATE_DIR">;
  nc: NatsConnection;
  logger: Logger;
  /** How long a restore waits for a busy chain (a running backup). Default 30 min. */
  chainWaitMs?: number;
  /** Period of the progress messages of restores and replications. Default 2 s. */
  progressIntervalMs?: number;
  /** Requests served at once (each may run an engine or open a libvirt connection); more are answered busy. Default 4. */
  maxConcurrent?: number;
}

export interface RestoreServiceHandle {
  stop(): Promise<void>;
}

/** Version reported by `nats micro info` (semver, as ADR-32 requires). */
const serviceVersion = "0.1.0";

/**
 * The restore service of one host, a NATS micro service (`nats micro ls`): endpoints
 * `vmbs.svc.restore.<host>.{sets,checkpoints,plan,run,replicate,replicate-plan,instant,instant-finish,instant-abandon}` in queue group "q", refusals as 400 and failures as 500 with
 * the Nats-Service-Error headers and a JSON `{ error }` body; `vmbs.evt.restore.<host>.*` events for every run.
 * Restore drills (`vmbs.cmd.drill.<host>`) share its chain leases and its stop.
 */
export async function startRestoreService(deps: RestoreServiceDeps): Promise<RestoreServiceHandle> {
  const { config, nc, logger } = deps;
  const host = config.HOST_ID;
  const chainWaitMs = deps.chainWaitMs ?? 30 * 60_000;
  const libvirt = createLibvirt(config.LIBVIRT_URI);
  const leases = await createChainLeases(nc, { holder: `${restoreServiceName}@${host}#${process.pid}` });
  const rootId = await backupRootId(config.LOCAL_BACKUP_PATH, host);
  const root = await realPathOf(config.LOCAL_BACKUP_PATH);
  const stopping = new AbortController();
  const attention = async (about: { name: string; source?: string }, reason: string): Promise<void> => {
    logger.warn({ domain: about.name, reason }, "instant VM needs attention");
    const subject = subjects.evt.restore(host, "attention");
    const runId = randomUUID();
    const event: RestoreEvent = { type: "attention", host, runId, operation: "instant", domain: about.source ?? about.name, target: about.name, reason, at: new Date().toISOString() };
    await publishJson(nc, subject, event, eventMessageId(subject, runId)).catch((err: unknown) => logger.error({ err }, "attention event not published"));
  };
  const instantRecords = openInstantRecords(instantRecordsDir(config.VMBS_STATE_DIR, host));
  const instantLeases = createInstantLeases({ leases, rootId, onTrouble: (name, source, reason) => void attention({ name, source }, reason) });
  await recoverInstantVms({ libvirt, records: instantRecords, leases: instantLeases, logger, attention });
  const endpoints = createEndpointHandlers({ config, nc, logger, libvirt, leases, rootId, root, chainWaitMs, signal: stopping.signal, instantRecords, instantLeases, progressIntervalMs: deps.progressIntervalMs });

  const drillLogger = logger.child({ service: "drill", host });
  const drills = await consumeDurable(nc, {
    ...drillDurable(host),
    onError: (err) => drillLogger.error({ err }, "drill command consumer error"),
    handler: createDrillCommandHandler({ config, nc, logger: drillLogger, leases, rootId, chainWaitMs }),
  });
  drillLogger.info({ scratch: drillScratchRoot(config) }, "restore drills ready");

  const service = await new Svcm(nc).add({
    name: restoreServiceName,
    version: serviceVersion,
    description: `restores of host ${host}`,
    metadata: { host },
  });
  const group = service.addGroup(subjects.svc.restore(host));
  const requests = createRestoreRequestHandler({ logger, endpoints, maxConcurrent: deps.maxConcurrent ?? 4 });
  for (const endpoint of Object.keys(endpoints) as RestoreEndpoint[]) {
    const subject = subjects.svc.restoreEndpoint(host, endpoint);
    // The iterator form: NATS micro's callbacks are synchronous, an async handler's rejection would go unseen.
    const messages = group.addEndpoint(endpoint, { metadata: restoreEndpointMetadata(endpoint) });
    void (async () => {
      for await (const msg of messages) requests.handle(endpoint, subject, msg);
    })();
  }
  logger.info({ host, endpoints: Object.keys(endpoints) }, "restore service ready");
  return {
    async stop() {
      // Abort first: a run must not go on to replace images while the service is going away.
      stopping.abort(new Error("the restore service is stopping"));
      await drills.stop();
      await service.stop();
      await requests.settled();
      await instantLeases.stop();
      await libvirt.close();
    },
  };
}

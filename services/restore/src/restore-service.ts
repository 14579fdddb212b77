import { randomUUID } from "node:crypto";
import { Svcm, type ServiceMsg } from "@nats-io/services";
import { backupRootId, createChainLeases, LeaseBusyError, publishJson, type NatsConnection } from "@vmbs/bus";
import { readChainFolder } from "@vmbs/chain";
import type { Config } from "@vmbs/config";
import {
  eventMessageId,
  parsePayload,
  restoreCheckpointsRequestSchema,
  restoreRunRequestSchema,
  restoreServiceName,
  restoreSetsRequestSchema,
  subjects,
  type RestoreEndpoint,
  type RestoreEvent,
  type RestoreEventType,
} from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { createLibvirt, RestoreError } from "@vmbs/virt";
import { BackupSetError, listBackupSets, listRestorePoints, setFolder } from "./backup-sets.js";
import { DomainXmlError } from "./domain-xml.js";
import { startDrills } from "./drill-service.js";
import { planRestore, restoreDomain, RestoreRefusedError, type ResolvedRestore } from "./run-restore.js";

export interface RestoreServiceDeps {
  config: Pick<Config, "HOST_ID" | "LOCAL_BACKUP_PATH" | "LIBVIRT_URI" | "VM_WAIT_TIME" | "TZ" | "DRILL_SCRATCH_PATH">;
  nc: NatsConnection;
  logger: Logger;
  /** How long a restore waits for a busy chain (a running backup). Default 30 min. */
  chainWaitMs?: number;
}

export interface RestoreService {
  stop(): Promise<void>;
}

/** Version reported by `nats micro info` (semver, as ADR-32 requires). */
const serviceVersion = "0.1.0";

const isRefusal = (err: unknown): boolean =>
  err instanceof RestoreRefusedError || err instanceof BackupSetError || err instanceof DomainXmlError || err instanceof LeaseBusyError;

/**
 * The restore service of one host, a NATS micro service (`nats micro ls`): endpoints
 * `vmbs.svc.restore.<host>.{sets,checkpoints,plan,run}` in queue group "q", refusals as 400 and failures as 500 with
 * the Nats-Service-Error headers and a JSON `{ error }` body; `vmbs.evt.restore.<host>.*` events for every run.
 */
export async function startRestoreService(deps: RestoreServiceDeps): Promise<RestoreService> {
  const { config, nc, logger } = deps;
  const host = config.HOST_ID;
  const libvirt = createLibvirt(config.LIBVIRT_URI);
  const leases = await createChainLeases(nc, { holder: `${restoreServiceName}@${host}#${process.pid}` });
  const rootId = await backupRootId(config.LOCAL_BACKUP_PATH, host);
  const root = config.LOCAL_BACKUP_PATH;

  const handlers: Record<RestoreEndpoint, (msg: ServiceMsg) => Promise<unknown>> = {
    async sets(msg) {
      const req = parsePayload(restoreSetsRequestSchema, msg.data);
      if (!req.ok) throw new BackupSetError(req.reason);
      return { sets: await listBackupSets(req.value.from ?? root, req.value.domain) };
    },
    async checkpoints(msg) {
      const req = parsePayload(restoreCheckpointsRequestSchema, msg.data);
      if (!req.ok) throw new BackupSetError(req.reason);
      const { domain, from, set = domain } = req.value;
      const folder = await readChainFolder(setFolder(from ?? root, domain, set), domain);
      return { set, checkpoints: await listRestorePoints(folder) };
    },
    async plan(msg) {
      const req = parsePayload(restoreRunRequestSchema, msg.data);
      if (!req.ok) throw new BackupSetError(req.reason);
      return planRestore({ libvirt, backupRoot: root }, req.value);
    },
    async run(msg) {
      const parsed = parsePayload(restoreRunRequestSchema, msg.data);
      if (!parsed.ok) throw new BackupSetError(parsed.reason);
      const req = parsed.value;
      const runId = randomUUID();
      let seq = 0;
      let resolved: ResolvedRestore = { set: req.set ?? req.domain, checkpoint: "" };
      const emit = async (type: RestoreEventType, extra: Partial<RestoreEvent> = {}): Promise<void> => {
        const subject = subjects.evt.restore(host, type);
        const event: RestoreEvent = {
          type, host, runId, domain: req.domain, target: req.as ?? req.domain, set: resolved.set,
          ...(resolved.checkpoint ? { checkpoint: resolved.checkpoint } : {}),
          ...(req.requestId ? { requestId: req.requestId } : {}),
          ...extra,
          at: new Date().toISOString(),
        };
        await publishJson(nc, subject, event, eventMessageId(subject, `${runId}.${seq++}`));
      };
      try {
        const reply = await restoreDomain(
          {
            libvirt,
            signal: stopping.signal,
            libvirtUri: config.LIBVIRT_URI,
            backupRoot: root,
            waitTimeSec: config.VM_WAIT_TIME,
            ...(config.TZ ? { timeZone: config.TZ } : {}),
            withChain: (domain, work) => leases.withLease(rootId, domain, { op: "restore", waitMs: deps.chainWaitMs ?? 30 * 60_000 }, (l) => work(l.signal)),
            progress: (step) => {
              logger.info({ runId, domain: req.domain, step }, "restore step");
              return emit("progress", { step });
            },
          },
          req,
          runId,
          async (r) => {
            resolved = r;
            await emit("started");
          },
        );
        await emit("completed", { images: reply.images });
        return { ...reply, runId };
      } catch (err) {
        logger.warn({ err, runId, domain: req.domain }, "restore failed");
        await emit("failed", { reason: (err as Error).message }).catch((e: unknown) => logger.error({ err: e, runId }, "failed event not published"));
        throw err;
      }
    },
  };

  // Restore drills (`vmbs.cmd.drill.<host>`) share the service's chain leases and its stop.
  const drills = await startDrills({ config, nc, logger, leases, rootId, chainWaitMs: deps.chainWaitMs ?? 30 * 60_000 });
  const service = await new Svcm(nc).add({
    name: restoreServiceName,
    version: serviceVersion,
    description: `restores of host ${host}`,
    metadata: { host },
  });
  const group = service.addGroup(subjects.svc.restore(host));
  const running = new Set<Promise<void>>();
  const stopping = new AbortController();
  for (const [endpoint, handle] of Object.entries(handlers) as [RestoreEndpoint, (m: ServiceMsg) => Promise<unknown>][]) {
    // The iterator form: NATS micro's callbacks are synchronous, an async handler's rejection would go unseen.
    const requests = group.addEndpoint(endpoint, { metadata: { schema: `restore.${endpoint}.v1` } });
    void (async () => {
      for await (const msg of requests) {
        // A run takes minutes: requests are served concurrently, each chain guarded by its lease.
        const p = handle(msg).then(
          (reply) => void msg.respond(JSON.stringify(reply)),
          (err: unknown) => {
            if (!isRefusal(err) && !(err instanceof RestoreError)) logger.error({ err, endpoint }, "restore endpoint failed");
            const message = (err as Error).message;
            msg.respondError(isRefusal(err) ? 400 : 500, message, JSON.stringify({ error: message }));
          },
        );
        running.add(p);
        void p.finally(() => running.delete(p));
      }
    })();
  }
  logger.info({ host, endpoints: Object.keys(handlers) }, "restore service ready");
  return {
    async stop() {
      // Abort first: a run must not go on to replace images while the service is going away.
      stopping.abort(new Error("the restore service is stopping"));
      await drills.stop();
      await service.stop();
      await Promise.allSettled(running);
      await libvirt.close();
    },
  };
}

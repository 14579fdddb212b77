import { randomUUID } from "node:crypto";
import { Svcm, type ServiceMsg } from "@nats-io/services";
import { createChainLeases, isRedirectedStoredMessage, publishJson, type NatsConnection } from "@vmbs/bus";
import { backupRootId, readChainFolder } from "@vmbs/chain";
import type { Config } from "@vmbs/config";
import {
  errorReplyStatus,
  eventMessageId,
  parsePayload,
  restoreCheckpointsRequestSchema,
  replicateRequestSchema,
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
import { realPathOf } from "./confine.js";
import { startDrills } from "./drill-service.js";
import { planRestore, restoreDomain, setsRoot, type ResolvedRestore } from "./run-restore.js";
import { planReplicate, replicateDomain, type ReplicateDeps } from "./replicate.js";
import { ReplicateRefusedError } from "./replicate-plan.js";

export interface RestoreServiceDeps {
  config: Pick<Config, "HOST_ID" | "LOCAL_BACKUP_PATH" | "LIBVIRT_URI" | "VM_WAIT_TIME" | "TZ" | "DRILL_SCRATCH_PATH" | "SSH_OPTIONS">;
  nc: NatsConnection;
  logger: Logger;
  /** How long a restore waits for a busy chain (a running backup). Default 30 min. */
  chainWaitMs?: number;
  /** Requests served at once (each may run an engine or open a libvirt connection); more are answered busy. Default 4. */
  maxConcurrent?: number;
}

export interface RestoreService {
  stop(): Promise<void>;
}

/** What an event says beyond its type, host, run and time. */
type EventBase = Omit<RestoreEvent, "type" | "host" | "runId" | "at">;

/** Version reported by `nats micro info` (semver, as ADR-32 requires). */
const serviceVersion = "0.1.0";

const isRefusal = (err: unknown): boolean => errorReplyStatus(err) < 500;

/**
 * The restore service of one host, a NATS micro service (`nats micro ls`): endpoints
 * `vmbs.svc.restore.<host>.{sets,checkpoints,plan,run,replicate,replicate-plan}` in queue group "q", refusals as 400 and failures as 500 with
 * the Nats-Service-Error headers and a JSON `{ error }` body; `vmbs.evt.restore.<host>.*` events for every run.
 */
export async function startRestoreService(deps: RestoreServiceDeps): Promise<RestoreService> {
  const { config, nc, logger } = deps;
  const host = config.HOST_ID;
  const libvirt = createLibvirt(config.LIBVIRT_URI);
  const leases = await createChainLeases(nc, { holder: `${restoreServiceName}@${host}#${process.pid}` });
  const rootId = await backupRootId(config.LOCAL_BACKUP_PATH, host);
  const root = await realPathOf(config.LOCAL_BACKUP_PATH);

  /** Runs one restore or replication with its events: each step, then completed with the images or failed with the reason. */
  const withEvents = async <R extends { images: string[] }>(
    what: "restore" | "replicate",
    base: () => EventBase,
    work: (run: { runId: string; progress(step: string): Promise<void>; started(): Promise<void> }) => Promise<R>,
  ): Promise<R & { runId: string }> => {
    const runId = randomUUID();
    const domain = base().domain;
    let seq = 0;
    const emit = async (type: RestoreEventType, extra: Partial<RestoreEvent> = {}): Promise<void> => {
      const subject = subjects.evt.restore(host, type);
      const event: RestoreEvent = { type, host, runId, ...base(), ...extra, at: new Date().toISOString() };
      await publishJson(nc, subject, event, eventMessageId(subject, `${runId}.${seq++}`));
    };
    try {
      const progress = (step: string): Promise<void> => {
        logger.info({ runId, domain, step }, `${what} step`);
        return emit("progress", { step });
      };
      const reply = await work({ runId, progress, started: () => emit("started") });
      await emit("completed", { images: reply.images });
      return { ...reply, runId };
    } catch (err) {
      logger.warn({ err, runId, domain }, `${what} failed`);
      await emit("failed", { reason: (err as Error).message }).catch((e: unknown) => logger.error({ err: e, runId }, "failed event not published"));
      throw err;
    }
  };
  const replicateDeps = (progress: ReplicateDeps["progress"]): ReplicateDeps => ({
    libvirt,
    libvirtUri: config.LIBVIRT_URI,
    sshOptions: config.SSH_OPTIONS,
    waitTimeSec: config.VM_WAIT_TIME,
    signal: stopping.signal,
    progress,
  });
  const replicateRequest = (msg: ServiceMsg) => {
    const req = parsePayload(replicateRequestSchema, msg.data);
    if (!req.ok) throw new ReplicateRefusedError(req.reason);
    return req.value;
  };

  const handlers: Record<RestoreEndpoint, (msg: ServiceMsg) => Promise<unknown>> = {
    async sets(msg) {
      const req = parsePayload(restoreSetsRequestSchema, msg.data);
      if (!req.ok) throw new BackupSetError(req.reason);
      return { sets: await listBackupSets(await setsRoot(root, req.value.from), req.value.domain) };
    },
    async checkpoints(msg) {
      const req = parsePayload(restoreCheckpointsRequestSchema, msg.data);
      if (!req.ok) throw new BackupSetError(req.reason);
      const { domain, from, set = domain } = req.value;
      const folder = await readChainFolder(setFolder(await setsRoot(root, from), domain, set), domain);
      return { set, checkpoints: await listRestorePoints(folder) };
    },
    async plan(msg) {
      const req = parsePayload(restoreRunRequestSchema, msg.data);
      if (!req.ok) throw new BackupSetError(req.reason);
      return planRestore({ libvirt, libvirtUri: config.LIBVIRT_URI, backupRoot: root }, req.value);
    },
    async run(msg) {
      const parsed = parsePayload(restoreRunRequestSchema, msg.data);
      if (!parsed.ok) throw new BackupSetError(parsed.reason);
      const req = parsed.value;
      let resolved: ResolvedRestore = { set: req.set ?? req.domain, checkpoint: "" };
      const base = (): EventBase => ({
        domain: req.domain, target: req.as ?? req.domain, set: resolved.set,
        ...(resolved.checkpoint ? { checkpoint: resolved.checkpoint } : {}),
        ...(req.requestId ? { requestId: req.requestId } : {}),
      });
      return withEvents("restore", base, (run) =>
        restoreDomain(
          {
            libvirt,
            signal: stopping.signal,
            libvirtUri: config.LIBVIRT_URI,
            backupRoot: root,
            waitTimeSec: config.VM_WAIT_TIME,
            ...(config.TZ ? { timeZone: config.TZ } : {}),
            withChain: (domain, work) => leases.withLease(rootId, domain, { op: "restore", waitMs: deps.chainWaitMs ?? 30 * 60_000 }, (l) => work(l.signal)),
            progress: run.progress,
          },
          req,
          run.runId,
          async (r) => {
            resolved = r;
            await run.started();
          },
        ),
      );
    },
    "replicate-plan": async (msg) => planReplicate(replicateDeps(async () => undefined), replicateRequest(msg)),
    async replicate(msg) {
      const req = replicateRequest(msg);
      // Replications share the restore events, told apart by `operation` (and carrying `to` instead of a set).
      const base = (): EventBase => ({
        operation: "replicate", domain: req.domain, target: req.as, to: req.to ?? config.LIBVIRT_URI,
        ...(req.requestId ? { requestId: req.requestId } : {}),
      });
      return withEvents("replicate", base, (run) => replicateDomain(replicateDeps(run.progress), req, run.runId, run.started));
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
  const maxConcurrent = deps.maxConcurrent ?? 4;
  const stopping = new AbortController();
  for (const [endpoint, handle] of Object.entries(handlers) as [RestoreEndpoint, (m: ServiceMsg) => Promise<unknown>][]) {
    const subject = subjects.svc.restoreEndpoint(host, endpoint);
    // The iterator form: NATS micro's callbacks are synchronous, an async handler's rejection would go unseen.
    const requests = group.addEndpoint(endpoint, { metadata: { schema: `restore.${endpoint}.v1` } });
    void (async () => {
      for await (const msg of requests) {
        // A JetStream push consumer delivers its stream's messages (their own subject kept) to any deliver
        // subject, and a direct get answers with a stored value on any reply subject (headers of a stored message,
        // no reply): only a request published to the endpoint's subject, awaiting a reply, is one. Nothing is
        // answered otherwise, since the reply subject of a delivery is the consumer's ack.
        if (msg.subject !== subject || !msg.reply || isRedirectedStoredMessage(msg.headers)) {
          logger.warn({ endpoint, subject: msg.subject }, "restore request ignored: not a request published to the endpoint's subject");
          continue;
        }
        // A run takes minutes: requests are served concurrently, each chain guarded by its lease, up to a bound.
        if (running.size >= maxConcurrent) {
          logger.warn({ endpoint, maxConcurrent }, "restore request refused: busy");
          const busy = `busy: ${maxConcurrent} restore requests are being served; try again later`;
          msg.respondError(503, busy, JSON.stringify({ error: busy }));
          continue;
        }
        const p = handle(msg).then(
          (reply) => void msg.respond(JSON.stringify(reply)),
          (err: unknown) => {
            if (!isRefusal(err) && !(err instanceof RestoreError)) logger.error({ err, endpoint }, "restore endpoint failed");
            const message = (err as Error).message;
            // A header holds one line (a multi-line message, e.g. a program's stderr, would lose the whole reply).
            msg.respondError(errorReplyStatus(err), message.replace(/[\r\n]+/g, " "), JSON.stringify({ error: message }));
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

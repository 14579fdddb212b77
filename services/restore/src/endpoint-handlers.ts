import { randomUUID } from "node:crypto";
import type { ServiceMsg } from "@nats-io/services";
import { defaultProgressIntervalMs, publishJson, tickProgress, type ChainLeases, type NatsConnection } from "@vmbs/bus";
import { readChainFolder } from "@vmbs/chain";
import type { Config } from "@vmbs/config";
import {
  eventMessageId,
  instantEndRequestSchema,
  instantRestoreRequestSchema,
  parsePayload,
  restoreCheckpointsRequestSchema,
  replicateRequestSchema,
  restoreRunRequestSchema,
  restoreSetsRequestSchema,
  restoreProgressSchema,
  subjects,
  type RestoreEndpoint,
  type RestoreEvent,
  type RestoreEventType,
} from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import type { Libvirt } from "@vmbs/virt";
import type { FollowProgress } from "./follow-progress.js";
import { BackupSetError, listBackupSets, listRestorePoints, setFolder } from "./backup-sets.js";
import { planRestore, restoreDomain, RestoreRefusedError, setsRoot, type ResolvedRestore } from "./run-restore.js";
import { planReplicate, replicateDomain, type ReplicateDeps } from "./replicate.js";
import { ReplicateRefusedError } from "./replicate-plan.js";
import { abandonInstant, finishInstant, startInstant, type InstantDeps } from "./instant-restore.js";
import type { InstantLeases } from "./instant-leases.js";
import type { InstantRecords } from "./instant-record.js";

export interface EndpointHandlersDeps {
  config: Pick<Config, "HOST_ID" | "LIBVIRT_URI" | "VM_WAIT_TIME" | "TZ" | "SSH_OPTIONS">;
  nc: NatsConnection;
  logger: Logger;
  libvirt: Libvirt;
  leases: ChainLeases;
  rootId: string;
  /** The backup root, its real path. */
  root: string;
  /** How long a restore waits for a busy chain (a running backup). */
  chainWaitMs: number;
  /** Aborted when the service stops: a run must not go on replacing images then. */
  signal: AbortSignal;
  /** Period of the progress messages (`vmbs.progress.restore.<host>`). Default 2 s. */
  progressIntervalMs?: number;
  /** The instant VMs' records and chain leases. */
  instantRecords: InstantRecords;
  instantLeases: InstantLeases;
}

/** What one endpoint does with a request: its reply, or a refusal or failure thrown. */
export type EndpointHandler = (msg: ServiceMsg) => Promise<unknown>;

/** What an event says beyond its type, host, run and time. */
type EventBase = Omit<RestoreEvent, "type" | "host" | "runId" | "at">;

/**
 * The handlers of the restore endpoints `sets`, `checkpoints`, `plan`, `run`, `replicate-plan`, `replicate`,
 * `instant`, `instant-finish` and `instant-abandon`; a run, a replication or an instant recovery's step announces
 * `vmbs.evt.restore.<host>.*` events.
 */
export function createEndpointHandlers(deps: EndpointHandlersDeps): Record<RestoreEndpoint, EndpointHandler> {
  const { config, nc, logger, libvirt, leases, rootId, root } = deps;
  const host = config.HOST_ID;

  /** Runs one restore, replication or instant recovery step with its events: each step, then completed with the images or failed with the reason. */
  const withEvents = async <R extends { images: string[] }>(
    what: "restore" | "replicate" | "instant",
    base: () => EventBase,
    work: (run: { runId: string; progress(step: string, bytes?: { done: number; total: number }): Promise<void>; started(): Promise<void>; follow: FollowProgress }) => Promise<R>,
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
      const progress = (step: string, bytes?: { done: number; total: number }): Promise<void> => {
        logger.info({ runId, domain, step }, `${what} step`);
        return emit("progress", { step, ...(bytes ? { bytesDone: bytes.done, bytesTotal: bytes.total } : {}) });
      };
      // Core NATS, no ack awaited: progress is for whoever watches now; a lost tick only makes a bar jump.
      const follow: FollowProgress = (sample) => {
        const ticker = tickProgress({
          sample,
          intervalMs: deps.progressIntervalMs ?? defaultProgressIntervalMs,
          publish: (figures) => {
            const { domain: d, target, operation, requestId } = base();
            const payload = restoreProgressSchema.parse({ host, runId, type: "progress", domain: d, target, ...(operation ? { operation } : {}), ...(requestId ? { requestId } : {}), ...figures, at: new Date().toISOString() });
            try {
              nc.publish(subjects.progress.restore(host), JSON.stringify(payload));
            } catch (err) {
              logger.debug({ err }, "could not publish restore progress");
            }
          },
        });
        return () => ticker.stop();
      };
      const reply = await work({ runId, progress, started: () => emit("started"), follow });
      await emit("completed", { images: reply.images });
      return { ...reply, runId };
    } catch (err) {
      logger.warn({ err, runId, domain }, `${what} failed`);
      await emit("failed", { reason: (err as Error).message }).catch((e: unknown) => logger.error({ err: e, runId }, "failed event not published"));
      throw err;
    }
  };
  const replicateDeps = (progress: ReplicateDeps["progress"], follow?: FollowProgress): ReplicateDeps => ({
    ...(follow ? { follow } : {}),
    libvirt,
    libvirtUri: config.LIBVIRT_URI,
    sshOptions: config.SSH_OPTIONS,
    waitTimeSec: config.VM_WAIT_TIME,
    signal: deps.signal,
    progress,
  });
  const replicateRequest = (msg: ServiceMsg) => {
    const req = parsePayload(replicateRequestSchema, msg.data);
    if (!req.ok) throw new ReplicateRefusedError(req.reason);
    return req.value;
  };

  const instantDeps = (progress: InstantDeps["progress"]): InstantDeps => ({
    libvirt,
    libvirtUri: config.LIBVIRT_URI,
    backupRoot: root,
    records: deps.instantRecords,
    leases: deps.instantLeases,
    chainWaitMs: deps.chainWaitMs,
    signal: deps.signal,
    progress,
  });
  // One request at a time per instant VM: a finish and an abandon of the same VM must not cross.
  const instantBusy = new Set<string>();
  const oneAtATime = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    if (instantBusy.has(name)) throw new RestoreRefusedError(`another request is working on the instant VM ${JSON.stringify(name)}; try again when it is done`);
    instantBusy.add(name);
    try {
      return await work();
    } finally {
      instantBusy.delete(name);
    }
  };
  const instantEnd = (msg: ServiceMsg) => {
    const req = parsePayload(instantEndRequestSchema, msg.data);
    if (!req.ok) throw new BackupSetError(req.reason);
    return req.value;
  };
  /** Finish and abandon name the instant domain; their events name its source, once the record is read. */
  const instantEndBase = async (domain: string, requestId: string | undefined): Promise<() => EventBase> => {
    const record = await deps.instantRecords.get(domain);
    return () => ({ operation: "instant", domain: record?.source ?? domain, target: domain, ...(record ? { set: record.set, checkpoint: record.checkpoint } : {}), ...(requestId ? { requestId } : {}) });
  };

  return {
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
            signal: deps.signal,
            libvirtUri: config.LIBVIRT_URI,
            backupRoot: root,
            waitTimeSec: config.VM_WAIT_TIME,
            ...(config.TZ ? { timeZone: config.TZ } : {}),
            withChain: (domain, work) => leases.withLease(rootId, domain, { op: "restore", waitMs: deps.chainWaitMs }, (l) => work(l.signal)),
            progress: run.progress,
            follow: run.follow,
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
      return withEvents("replicate", base, (run) => replicateDomain(replicateDeps(run.progress, run.follow), req, run.runId, run.started));
    },
    async instant(msg) {
      const parsed = parsePayload(instantRestoreRequestSchema, msg.data);
      if (!parsed.ok) throw new BackupSetError(parsed.reason);
      const req = parsed.value;
      let resolved: ResolvedRestore = { set: req.set ?? req.domain, checkpoint: "" };
      const base = (): EventBase => ({
        operation: "instant", domain: req.domain, target: req.as, set: resolved.set,
        ...(resolved.checkpoint ? { checkpoint: resolved.checkpoint } : {}),
        ...(req.requestId ? { requestId: req.requestId } : {}),
      });
      return oneAtATime(req.as, () => withEvents("instant", base, async (run) => {
        const reply = await startInstant(instantDeps(run.progress), req, async (r) => {
          resolved = r;
          await run.started();
        });
        return { ...reply, images: reply.disks.map((d) => d.overlay) };
      })).then(({ images: _overlays, ...reply }) => reply);
    },
    async "instant-finish"(msg) {
      const req = instantEnd(msg);
      const base = await instantEndBase(req.domain, req.requestId);
      return oneAtATime(req.domain, () => withEvents("instant", base, async (run) => {
        await run.started();
        return finishInstant(instantDeps(run.progress), req);
      }));
    },
    async "instant-abandon"(msg) {
      const req = instantEnd(msg);
      const base = await instantEndBase(req.domain, req.requestId);
      return oneAtATime(req.domain, () => withEvents("instant", base, async (run) => {
        await run.started();
        return { ...(await abandonInstant(instantDeps(run.progress), req)), images: [] as string[] };
      })).then(({ images: _none, ...reply }) => reply);
    },
  };
}

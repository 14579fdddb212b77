import { join } from "node:path";
import { schedule, type ScheduledTask } from "node-cron";
import { eventMessageId, mirrorEventSchema, mirrorProgressSchema, subjects, type MirrorEventInput, type MirrorProgress } from "@vmbs/contracts";
import {
  consumeDurable,
  mirrorCommandDurable,
  mirrorEventsDurable,
  createChainGuard,
  createChainLeases,
  createDomainQueue,
  ensureStreams,
  jetStreamSender,
  openEventOutbox,
  type DurableConsumer,
  type NatsConnection,
  type ProgressFigures,
} from "@vmbs/bus";
import { backupRootId } from "@vmbs/chain";
import { noPolicySource, parseSshOptions, policyFor, type Config, type PolicySource } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { createBackupCompletedHandler } from "./handle-backup-completed.js";
import { createMirrorCommandHandler } from "./handle-mirror-command.js";
import { describeTarget, parseMirrorTarget, parseRcloneTarget, type MirrorTarget } from "./mirror-target.js";
import { createMirrorSync, type MirrorSync, type MirrorSyncDeps } from "./sync-chains.js";

export interface MirrorDeps extends Pick<MirrorSyncDeps, "retryDelaysMs" | "rsyncTimeoutMs" | "progressIntervalMs"> {
  config: Config;
  nc: NatsConnection;
  logger: Logger;
  /** The process's VMBS_POLICY_FILE, kept current (serve.ts opens one for all its services); none by default. */
  policies?: PolicySource;
  /** How long a sync waits for the chain lease (a backup or rotation running). Default 30 min. */
  leaseWaitMs?: number;
  /** Sync every chain once at start, so what failed before a restart catches up. Default true. */
  catchUpAtStart?: boolean;
}

export interface MirrorHandle {
  /** Syncs one domain to every target now (what a command or a completed backup does); resolves with each target's final event. */
  syncDomain: MirrorSync["syncDomain"];
  stop(): Promise<void>;
}

/**
 * The mirror of one host: copies each domain's active chain to RSYNC_BACKUP_PATH with rsync after each completed
 * backup (or at RSYNC_SCHEDULE, or on `vmbs.cmd.mirror.<host>`), archives and prunes the mirror's copies when the
 * local chain rotated or is gone, verifies the copy, and retries a failed sync with backoff until it succeeds.
 */
export async function startMirror(deps: MirrorDeps): Promise<MirrorHandle> {
  const { config, nc } = deps;
  const targets: MirrorTarget[] = [
    ...(config.RSYNC_BACKUP_PATH ? [parseMirrorTarget(config.RSYNC_BACKUP_PATH)] : []),
    ...config.MIRROR_RCLONE_TARGETS.map(parseRcloneTarget),
  ];
  if (targets.length === 0) throw new TypeError("neither RSYNC_BACKUP_PATH nor MIRROR_RCLONE_TARGETS is set");
  const host = config.HOST_ID;
  const logger = deps.logger.child({ service: "mirror", host });
  // Read at start so a bad SSH_OPTIONS stops the service, but only when a target is reached over ssh (the same
  // options serve other ssh uses, where e.g. UserKnownHostsFile=/dev/null is none of the mirror's business).
  const ssh = targets.some((t) => t.kind === "ssh") ? parseSshOptions(config.SSH_OPTIONS) : undefined;
  const rootId = await backupRootId(config.LOCAL_BACKUP_PATH, host);
  const policies = deps.policies ?? noPolicySource;
  await ensureStreams(nc);

  const outbox = await openEventOutbox({
    dir: join(config.VMBS_STATE_DIR, "mirror", host),
    send: jetStreamSender(nc),
    onError: (err, event, attempt) => {
      if (attempt <= 1 || attempt % 20 === 0) logger.warn({ err, subject: event?.subject, attempt }, "mirror event not published yet: kept in the outbox");
    },
  });
  const announce = async (e: MirrorEventInput): Promise<void> => {
    const payload = mirrorEventSchema.parse(e);
    const subject = subjects.evt.mirror(host, payload.type);
    await outbox.enqueue({ subject, msgId: eventMessageId(subject, payload.runId), payload });
  };
  const leases = await createChainLeases(nc, {
    holder: `mirror@${host}#${process.pid}`,
    onReleaseError: (err, key) => logger.warn({ err, key }, "could not release a chain lease; it expires after its TTL"),
  });
  const guard = createChainGuard(createDomainQueue(), leases, rootId, deps.leaseWaitMs);
  const policyOf = (domain: string) => policyFor(policies.current(), config, domain);
  // A sync's progress goes to whoever watches now (core NATS, no ack awaited); its events say who asked.
  const runs = new Map<string, Omit<MirrorProgress, "bytesDone" | "bytesTotal" | "rate" | "at">>();
  const announceRun = async (e: MirrorEventInput): Promise<void> => {
    if (e.type === "started" && e.domain) runs.set(e.runId, { host, runId: e.runId, type: "progress", domain: e.domain, target: e.target, ...(e.requestId ? { requestId: e.requestId } : {}) });
    else if (e.type !== "started") runs.delete(e.runId);
    await announce(e);
  };
  const publishProgress = (runId: string, figures: ProgressFigures): void => {
    const run = runs.get(runId);
    if (!run) return;
    try {
      nc.publish(subjects.progress.mirror(host), JSON.stringify(mirrorProgressSchema.parse({ ...run, ...figures, at: new Date().toISOString() })));
    } catch (err) {
      logger.debug({ err }, "could not publish mirror progress");
    }
  };
  const sync = createMirrorSync({
    config, policyOf, targets, ssh, guard, announce: announceRun, logger,
    retryDelaysMs: deps.retryDelaysMs, rsyncTimeoutMs: deps.rsyncTimeoutMs, publishProgress, progressIntervalMs: deps.progressIntervalMs,
  });

  const consumers: DurableConsumer[] = [];
  consumers.push(
    await consumeDurable(nc, {
      ...mirrorEventsDurable(host),
      onError: (err) => logger.error({ err }, "mirror: backup events consumer error"),
      handler: createBackupCompletedHandler({ host, schedule: config.RSYNC_SCHEDULE, syncDomain: sync.syncDomain }),
    }),
  );
  consumers.push(
    await consumeDurable(nc, {
      ...mirrorCommandDurable(host),
      onError: (err) => logger.error({ err }, "mirror: command consumer error"),
      handler: createMirrorCommandHandler({ host, targets, announce, sync }),
    }),
  );
  let task: ScheduledTask | undefined;
  if (config.RSYNC_SCHEDULE) {
    task = schedule(config.RSYNC_SCHEDULE, async () => {
      await sync.syncAll("schedule").catch((err: unknown) => logger.error({ err }, "scheduled mirror run failed"));
    }, { timezone: config.TZ, name: "mirror-schedule", noOverlap: true });
  }
  logger.info({ targets: targets.map(describeTarget), schedule: config.RSYNC_SCHEDULE ?? "after each backup" }, "mirror started");
  // rsync skips what the mirror already has, so this costs a listing per chain when nothing was missed.
  if (deps.catchUpAtStart ?? true) void sync.syncAll("startup").catch((err: unknown) => logger.warn({ err }, "mirror catch-up at start failed"));

  return {
    syncDomain: sync.syncDomain,
    async stop() {
      sync.stop();
      await task?.destroy();
      for (const c of consumers) await c.stop();
      await outbox.close(2000);
    },
  };
}

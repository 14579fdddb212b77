import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join, posix } from "node:path";
import { schedule, type ScheduledTask } from "node-cron";
import {
  backupCompletedSchema,
  eventMessageId,
  mirrorCommandSchema,
  mirrorEventSchema,
  parsePayload,
  subjects,
  VmbsError,
  type MirrorEventInput,
  type mirrorTriggers,
} from "@vmbs/contracts";
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
} from "@vmbs/bus";
import { backupRootId, chainFolderPath, fileStampsOf, isActiveChainFolder, localFileLister, mirrorCopyFate, readChainFolder, type FileLister, type FileStamps } from "@vmbs/chain";
import { parseSshOptions, type Config } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { compareTrees, rotateMirrorCopy } from "./mirror-chain.js";
import { localMirrorStore, openSftpStore, type MirrorStore } from "./mirror-store.js";
import { describeTarget, parseMirrorTarget, parseRcloneTarget, type MirrorTarget } from "./mirror-target.js";
import { rcloneCopy, rcloneStore } from "./rclone.js";
import { rsyncArgs, runRsync } from "./run-rsync.js";

type Trigger = (typeof mirrorTriggers)[number];

export interface MirrorDeps {
  config: Config;
  nc: NatsConnection;
  logger: Logger;
  /** Pauses between retries of a failed sync; the last one repeats until a sync succeeds. Default 1, 2, 5, 10, 30 min. */
  retryDelaysMs?: readonly number[];
  /** Longest one rsync run may take. Default 12 h (rsync's own --timeout ends a silent transfer after 5 min). */
  rsyncTimeoutMs?: number;
  /** How long a sync waits for the chain lease (a backup or rotation running). Default 30 min. */
  leaseWaitMs?: number;
  /** Sync every chain once at start, so what failed before a restart catches up. Default true. */
  catchUpAtStart?: boolean;
}

export interface MirrorService {
  /** Syncs one domain to every target now (what a command or a completed backup does); resolves with each target's final event. */
  syncDomain(domain: string, trigger: Trigger, requestId?: string): Promise<MirrorEventInput[]>;
  /** Syncs every chain folder of the backup root. */
  syncAll(trigger: Trigger, requestId?: string): Promise<MirrorEventInput[]>;
  stop(): Promise<void>;
}

const defaultRetryDelaysMs = [60_000, 120_000, 300_000, 600_000, 1_800_000];

/** Thrown inside a sync with a reason a person can act on. */
class MirrorSyncError extends VmbsError {
  constructor(message: string) {
    super("failed", message);
  }
}

/**
 * The mirror of one host: copies each domain's active chain to RSYNC_BACKUP_PATH with rsync after each completed
 * backup (or at RSYNC_SCHEDULE, or on `vmbs.cmd.mirror.<host>`), archives and prunes the mirror's copies when the
 * local chain rotated or is gone, verifies the copy, and retries a failed sync with backoff until it succeeds.
 */
export async function startMirror(deps: MirrorDeps): Promise<MirrorService> {
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
  const transferTimeoutMs = deps.rsyncTimeoutMs ?? 12 * 3600_000;
  const root = config.LOCAL_BACKUP_PATH;
  const rootId = await backupRootId(root, host);
  const retryDelays = deps.retryDelaysMs ?? defaultRetryDelaysMs;
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
  const stopping = new AbortController();
  /** Pending retries, keyed by target and domain. */
  const retries = new Map<string, { attempt: number; timer?: NodeJS.Timeout }>();
  const retryKey = (target: MirrorTarget, domain: string) => `${describeTarget(target)}\n${domain}`;

  const openStore = (target: MirrorTarget, signal: AbortSignal): Promise<MirrorStore> | MirrorStore =>
    target.kind === "local"
      ? localMirrorStore()
      : target.kind === "ssh"
        ? openSftpStore({ host: target.host, user: target.user, ssh: ssh! })
        : rcloneStore(target.remote, { configFile: config.MIRROR_RCLONE_CONFIG, timeoutMs: 300_000, signal });

  /** Copies the chain: rsync (bytes from --stats) or rclone copy + rclone check. Returns the bytes sent. */
  async function transfer(target: MirrorTarget, local: string, domain: string, signal: AbortSignal): Promise<number> {
    if (target.kind === "rclone")
      return rcloneCopy(local, target.remote, posix.join(target.root, domain), { configFile: config.MIRROR_RCLONE_CONFIG, timeoutMs: transferTimeoutMs, signal });
    const args = rsyncArgs({ rsyncArgs: config.RSYNC_ARGS, sshOptions: config.SSH_OPTIONS, source: local, target, domain });
    return (await runRsync(args, { timeoutMs: transferTimeoutMs, signal })).bytesSent;
  }

  /** A chain folder's files through the one chain reader; a symlinked folder is never followed, so never synced. */
  async function readStamps(dir: string, domain: string, fs: FileLister): Promise<FileStamps | undefined> {
    const folder = await readChainFolder(dir, domain, fs);
    if (folder.symlink) throw new MirrorSyncError(`${dir} is a symbolic link; a chain folder is never followed`);
    return fileStampsOf(folder);
  }

  /** The sync itself, under the chain lease: rotation of the mirror copy, the transfer, verification. */
  async function syncUnderLease(target: MirrorTarget, domain: string, signal: AbortSignal): Promise<Partial<MirrorEventInput>> {
    const local = chainFolderPath(root, domain);
    const copyPath = posix.join(target.root, domain);
    const store = await openStore(target, signal);
    try {
      const localTree = await readStamps(local, domain, localFileLister);
      const mirrorTree = await readStamps(copyPath, domain, store);
      const localNames = await readdir(root);
      const rotate = (mirror: FileStamps, keep: number) =>
        rotateMirrorCopy(store, { root: target.root, domain, mirror, localNames, keep, timeZone: config.TZ });
      const fate = mirrorCopyFate(localTree, mirrorTree);
      if (fate === "nothing") throw new MirrorSyncError(`no local chain folder ${local} to mirror`);
      if (fate === "archive-only") {
        const r = await rotate(mirrorTree!, 0);
        return { archivedTo: r.archivedTo, verifiedFiles: 0 };
      }
      let rotation: Awaited<ReturnType<typeof rotate>> | undefined;
      if (fate === "archive") rotation = await rotate(mirrorTree!, config.RSYNC_BACKUP_CHAINS_TO_KEEP);
      if (rotation?.keptForeign.length) logger.warn({ domain, archives: rotation.keptForeign }, "mirror archives due for deletion keep files the tool did not make; left in place");
      const bytesTransferred = await transfer(target, local, domain, signal);
      // Verify against the local chain as it is now: the lease kept writers away during the transfer.
      const after = await readStamps(local, domain, localFileLister);
      const copy = await readStamps(copyPath, domain, store);
      const diffs = compareTrees(after ?? new Map(), copy ?? new Map());
      if (diffs.length > 0) throw new MirrorSyncError(`the mirror copy differs from the local chain after the transfer: ${diffs.slice(0, 5).join("; ")}${diffs.length > 5 ? ` (+${diffs.length - 5} more)` : ""}`);
      return { bytesTransferred, verifiedFiles: after?.size ?? 0, archivedTo: rotation?.archivedTo, pruned: rotation?.pruned.length ? rotation.pruned : undefined };
    } finally {
      await store.close();
    }
  }

  function scheduleRetry(target: MirrorTarget, domain: string, attempt: number): void {
    const delay = retryDelays[Math.min(attempt - 1, retryDelays.length - 1)] ?? 60_000;
    const timer = setTimeout(() => {
      void syncTarget(target, domain, "retry").catch((err: unknown) => logger.error({ err, domain }, "mirror retry failed"));
    }, delay);
    retries.set(retryKey(target, domain), { attempt, timer });
    logger.info({ domain, target: describeTarget(target), attempt, inMs: delay }, "mirror sync will be retried");
  }

  async function syncDomain(domain: string, trigger: Trigger, requestId?: string): Promise<MirrorEventInput[]> {
    const results: MirrorEventInput[] = [];
    for (const target of targets) results.push(await syncTarget(target, domain, trigger, requestId));
    return results;
  }

  async function syncTarget(target: MirrorTarget, domain: string, trigger: Trigger, requestId?: string): Promise<MirrorEventInput> {
    const key = retryKey(target, domain);
    const pending = retries.get(key);
    clearTimeout(pending?.timer);
    const attempt = (pending?.attempt ?? 0) + 1;
    const runId = randomUUID();
    const started = Date.now();
    const base = { host, domain, requestId, runId, trigger, target: describeTarget(target), attempt };
    await announce({ ...base, type: "started", at: new Date().toISOString() });
    let final: MirrorEventInput;
    try {
      const result = await guard(domain, (leaseLost) => syncUnderLease(target, domain, AbortSignal.any([leaseLost, stopping.signal])));
      final = { ...base, ...result, type: "completed", at: new Date().toISOString(), durationMs: Date.now() - started };
      retries.delete(key);
      logger.info({ domain, trigger, bytesTransferred: final.bytesTransferred, durationMs: final.durationMs, archivedTo: final.archivedTo }, "mirror sync completed");
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      final = { ...base, type: "failed", at: new Date().toISOString(), durationMs: Date.now() - started, reason };
      logger.warn({ err, domain, trigger, attempt }, "mirror sync failed");
      // Local chain gone and nothing on the mirror: nothing will ever change by retrying.
      if (!stopping.signal.aborted && !(err instanceof MirrorSyncError && reason.startsWith("no local chain"))) scheduleRetry(target, domain, attempt);
      else retries.delete(key);
    }
    await announce(final);
    return final;
  }

  /** The active chain folders of the backup root: `X` holding `X.cpt`. */
  async function chainDomains(): Promise<string[]> {
    const names = await readdir(root, { withFileTypes: true });
    const found: string[] = [];
    for (const d of names) {
      if (!d.isDirectory()) continue;
      if (await isActiveChainFolder(root, d.name)) found.push(d.name);
    }
    return found.sort();
  }

  async function syncAll(trigger: Trigger, requestId?: string): Promise<MirrorEventInput[]> {
    const results: MirrorEventInput[] = [];
    for (const domain of await chainDomains()) results.push(...(await syncDomain(domain, trigger, requestId)));
    return results;
  }

  const syncedRuns = createRecentSet(1_000);
  const consumers: DurableConsumer[] = [];
  consumers.push(
    await consumeDurable(nc, {
      ...mirrorEventsDurable(host),
      onError: (err) => logger.error({ err }, "mirror: backup events consumer error"),
      handler: async (msg) => {
        // With RSYNC_SCHEDULE set the seed mirrors only at that schedule.
        if (config.RSYNC_SCHEDULE) return "ack";
        const parsed = parsePayload(backupCompletedSchema, msg.data);
        if (!parsed.ok || parsed.value.host !== host) return "term";
        // Commands coalesced into one backup each announce its `completed` (same runId): one sync serves them all.
        if (syncedRuns.has(parsed.value.runId)) return "ack";
        syncedRuns.add(parsed.value.runId);
        await syncDomain(parsed.value.domain ?? parsed.value.folder, "backup", parsed.value.requestId);
        return "ack";
      },
    }),
  );
  consumers.push(
    await consumeDurable(nc, {
      ...mirrorCommandDurable(host),
      onError: (err) => logger.error({ err }, "mirror: command consumer error"),
      handler: async (msg) => {
        const parsed = parsePayload(mirrorCommandSchema, msg.data);
        if (!parsed.ok) {
          await announce({ type: "failed", host, runId: randomUUID(), trigger: "command", target: targets.map(describeTarget).join(" "), at: new Date().toISOString(), reason: parsed.reason });
          return "term";
        }
        const { domain, requestId } = parsed.value;
        if (domain) await syncDomain(domain, "command", requestId);
        else await syncAll("command", requestId);
        return "ack";
      },
    }),
  );
  let task: ScheduledTask | undefined;
  if (config.RSYNC_SCHEDULE) {
    task = schedule(config.RSYNC_SCHEDULE, async () => {
      await syncAll("schedule").catch((err: unknown) => logger.error({ err }, "scheduled mirror run failed"));
    }, { timezone: config.TZ, name: "mirror-schedule", noOverlap: true });
  }
  logger.info({ targets: targets.map(describeTarget), schedule: config.RSYNC_SCHEDULE ?? "after each backup" }, "mirror started");
  // rsync skips what the mirror already has, so this costs a listing per chain when nothing was missed.
  if (deps.catchUpAtStart ?? true) void syncAll("startup").catch((err: unknown) => logger.warn({ err }, "mirror catch-up at start failed"));

  return {
    syncDomain,
    syncAll,
    async stop() {
      stopping.abort(new Error("the mirror is shutting down"));
      for (const r of retries.values()) clearTimeout(r.timer);
      await task?.destroy();
      for (const c of consumers) await c.stop();
      await outbox.close(2000);
    },
  };
}

/** A set that remembers only its `size` newest members (insertion order). */
function createRecentSet(size: number): { has(key: string): boolean; add(key: string): void } {
  const members = new Set<string>();
  return {
    has: (key) => members.has(key),
    add(key) {
      members.add(key);
      if (members.size > size) members.delete(members.values().next().value!);
    },
  };
}

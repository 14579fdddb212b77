import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import { posix } from "node:path";
import { VmbsError, type MirrorEventInput, type mirrorTriggers } from "@vmbs/contracts";
import { defaultProgressIntervalMs, tickProgress, type ChainGuard, type ProgressFigures } from "@vmbs/bus";
import { chainFolderPath, fileStampsOf, isActiveChainFolder, localFileLister, mirrorCopyFate, mirrorKeepAfterArchive, readChainFolder, type FileLister, type FileStamps } from "@vmbs/chain";
import type { Config, EffectivePolicy, SshSettings } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import { compareTrees, rotateMirrorCopy } from "./mirror-chain.js";
import { planMirrorSync, type MirrorSyncPlan } from "./plan-mirror.js";
import { localMirrorStore, openSftpStore, type MirrorStore } from "./mirror-store.js";
import { describeTarget, type MirrorTarget } from "./mirror-target.js";
import { rcloneCopy, rcloneStore } from "./rclone.js";
import { rsyncArgs, runRsync } from "./run-rsync.js";

export type Trigger = (typeof mirrorTriggers)[number];

export interface MirrorSyncDeps {
  config: Pick<Config, "HOST_ID" | "LOCAL_BACKUP_PATH" | "MIRROR_RCLONE_CONFIG" | "RSYNC_ARGS" | "SSH_OPTIONS" | "TZ">;
  /** The domain's policy now: whether it is mirrored and how many mirror archives it keeps (VMBS_POLICY_FILE, else the environment). */
  policyOf(domain: string): Pick<EffectivePolicy, "mirror" | "mirrorChainsToKeep">;
  targets: MirrorTarget[];
  /** The parsed SSH_OPTIONS, when a target is reached over ssh. */
  ssh: SshSettings | undefined;
  /** Runs a sync under the domain's chain lease. */
  guard: ChainGuard;
  /** Publishes a mirror event (through the service's outbox). */
  announce(event: MirrorEventInput): Promise<void>;
  logger: Logger;
  /** Pauses between retries of a failed sync; the last one repeats until a sync succeeds. Default 1, 2, 5, 10, 30 min. */
  retryDelaysMs?: readonly number[];
  /** Longest one rsync run may take. Default 12 h (rsync's own --timeout ends a silent transfer after 5 min). */
  rsyncTimeoutMs?: number;
  /** Publishes how far a running rsync is (`vmbs.progress.mirror.<host>`, core NATS: nothing waits on it). */
  publishProgress?(runId: string, figures: ProgressFigures): void;
  /** Period of those progress figures. Default 2 s. */
  progressIntervalMs?: number;
}

export interface MirrorSync {
  /** Syncs one domain to every target now; resolves with each target's final event. */
  syncDomain(domain: string, trigger: Trigger, requestId?: string): Promise<MirrorEventInput[]>;
  /** Syncs every chain folder of the backup root. */
  syncAll(trigger: Trigger, requestId?: string): Promise<MirrorEventInput[]>;
  /** A dry run of one domain: per target, what its next sync would archive and delete, announced as `planned`; changes nothing. */
  planDomain(domain: string, requestId?: string): Promise<MirrorEventInput[]>;
  /** A dry run of every chain folder of the backup root. */
  planAll(requestId?: string): Promise<MirrorEventInput[]>;
  /** Cancels running transfers and pending retries. */
  stop(): void;
}

const defaultRetryDelaysMs = [60_000, 120_000, 300_000, 600_000, 1_800_000];

/** Thrown inside a sync with a reason a person can act on. */
class MirrorSyncError extends VmbsError {
  constructor(message: string) {
    super("failed", message);
  }
}

/**
 * The syncs of one host's chains to every mirror target: archives and prunes the mirror's copies when the local
 * chain rotated or is gone, copies the chain (rsync or rclone), verifies the copy, announces each sync's events,
 * and retries a failed sync with backoff until it succeeds.
 */
export function createMirrorSync(deps: MirrorSyncDeps): MirrorSync {
  const { config, targets, ssh, guard, announce, logger } = deps;
  const host = config.HOST_ID;
  const root = config.LOCAL_BACKUP_PATH;
  const transferTimeoutMs = deps.rsyncTimeoutMs ?? 12 * 3600_000;
  const retryDelays = deps.retryDelaysMs ?? defaultRetryDelaysMs;
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

  /**
   * Copies the chain: rsync (bytes from --stats) or rclone copy + rclone check. Returns the bytes sent. An rsync
   * run's progress is its own running count against `bytesToCopy`; rclone's is not followed.
   */
  async function transfer(target: MirrorTarget, local: string, domain: string, signal: AbortSignal, runId: string, bytesToCopy: number): Promise<number> {
    if (target.kind === "rclone")
      return rcloneCopy(local, target.remote, posix.join(target.root, domain), { configFile: config.MIRROR_RCLONE_CONFIG, timeoutMs: transferTimeoutMs, signal });
    const args = rsyncArgs({ rsyncArgs: config.RSYNC_ARGS, sshOptions: config.SSH_OPTIONS, source: local, target, domain });
    let bytesDone: number | undefined;
    const publish = deps.publishProgress;
    const ticker = publish
      ? tickProgress({
          // Nothing before rsync's first count; never more done than the whole (a file grown since the listing).
          sample: () => (bytesDone === undefined ? undefined : { bytesDone, bytesTotal: Math.max(bytesToCopy, bytesDone) }),
          intervalMs: deps.progressIntervalMs ?? defaultProgressIntervalMs,
          publish: (figures) => publish(runId, figures),
        })
      : undefined;
    try {
      return (await runRsync(args, { timeoutMs: transferTimeoutMs, signal, onBytes: (b) => (bytesDone = b) })).bytesSent;
    } finally {
      ticker?.stop();
    }
  }

  /** Bytes of the local files rsync will copy: those the mirror copy lacks or has with another size or mtime (its quick check). */
  function bytesToCopy(local: FileStamps, mirror: FileStamps | undefined): number {
    let bytes = 0;
    for (const [path, l] of local) {
      const m = mirror?.get(path);
      if (!m || m.size !== l.size || m.mtimeS !== l.mtimeS) bytes += l.size;
    }
    return bytes;
  }

  /** A chain folder's files through the one chain reader; a symlinked folder is never followed, so never synced. */
  async function readStamps(dir: string, domain: string, fs: FileLister): Promise<FileStamps | undefined> {
    const folder = await readChainFolder(dir, domain, fs);
    if (folder.symlink) throw new MirrorSyncError(`${dir} is a symbolic link; a chain folder is never followed`);
    return fileStampsOf(folder);
  }

  /** The sync itself, under the chain lease: rotation of the mirror copy, the transfer, verification. */
  async function syncUnderLease(target: MirrorTarget, domain: string, signal: AbortSignal, runId: string): Promise<Partial<MirrorEventInput>> {
    const local = chainFolderPath(root, domain);
    const copyPath = posix.join(target.root, domain);
    const store = await openStore(target, signal);
    try {
      const localTree = await readStamps(local, domain, localFileLister);
      const mirrorTree = await readStamps(copyPath, domain, store);
      const localNames = await readdir(root);
      const fate = mirrorCopyFate(localTree, mirrorTree);
      if (fate === "nothing") throw new MirrorSyncError(`no local chain folder ${local} to mirror`);
      const keep = mirrorKeepAfterArchive(fate, deps.policyOf(domain).mirrorChainsToKeep);
      const rotation =
        keep === undefined ? undefined : await rotateMirrorCopy(store, { root: target.root, domain, mirror: mirrorTree!, localNames, keep, timeZone: config.TZ });
      if (fate === "archive-only") return { archivedTo: rotation?.archivedTo, verifiedFiles: 0 };
      if (rotation?.keptForeign.length) logger.warn({ domain, archives: rotation.keptForeign }, "mirror archives due for deletion keep files the tool did not make; left in place");
      // An archived copy leaves nothing at the copy's path: everything is copied.
      const toCopy = bytesToCopy(localTree ?? new Map(), rotation ? undefined : mirrorTree);
      const bytesTransferred = await transfer(target, local, domain, signal, runId, toCopy);
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

  /** The dry run itself, under the chain lease so it sees no half-done rotation: reads only. */
  async function planUnderLease(target: MirrorTarget, domain: string, signal: AbortSignal): Promise<MirrorSyncPlan> {
    const store = await openStore(target, signal);
    try {
      return await planMirrorSync({
        store,
        root: target.root,
        domain,
        local: await readStamps(chainFolderPath(root, domain), domain, localFileLister),
        mirror: await readStamps(posix.join(target.root, domain), domain, store),
        localNames: await readdir(root),
        mirrorChainsToKeep: deps.policyOf(domain).mirrorChainsToKeep,
        timeZone: config.TZ,
      });
    } finally {
      await store.close();
    }
  }

  async function planDomain(domain: string, requestId?: string): Promise<MirrorEventInput[]> {
    const results: MirrorEventInput[] = [];
    for (const target of targets) {
      const base = { host, domain, requestId, runId: randomUUID(), trigger: "command" as const, target: describeTarget(target) };
      let event: MirrorEventInput;
      if (!deps.policyOf(domain).mirror) {
        event = { ...base, type: "planned", at: new Date().toISOString(), reason: `not mirrored (its policy in VMBS_POLICY_FILE says mirror: false): no sync touches the mirror` };
      } else {
        try {
          const plan = await guard(domain, (leaseLost) => planUnderLease(target, domain, AbortSignal.any([leaseLost, stopping.signal])));
          event = { ...base, type: "planned", at: new Date().toISOString(), reason: `dry run: ${plan.reason}`, wouldArchiveTo: plan.wouldArchiveTo, wouldPrune: plan.wouldPrune };
        } catch (err) {
          event = { ...base, type: "failed", at: new Date().toISOString(), reason: `dry run: ${err instanceof Error ? err.message : String(err)}` };
        }
      }
      await announce(event);
      results.push(event);
    }
    return results;
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
    if (!deps.policyOf(domain).mirror) {
      logger.info({ domain, trigger }, "not mirrored: its policy says mirror: false");
      // Asked for by name: answered, so the asker does not wait for a sync that never comes.
      if (trigger === "command") {
        const refusal: MirrorEventInput = { type: "failed", host, domain, requestId, runId: randomUUID(), trigger, target: targets.map(describeTarget).join(" "), at: new Date().toISOString(), reason: `${domain} is not mirrored: its policy (VMBS_POLICY_FILE) says mirror: false` };
        await announce(refusal);
        results.push(refusal);
      }
      return results;
    }
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
      const result = await guard(domain, (leaseLost) => syncUnderLease(target, domain, AbortSignal.any([leaseLost, stopping.signal]), runId));
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

  async function planAll(requestId?: string): Promise<MirrorEventInput[]> {
    const results: MirrorEventInput[] = [];
    for (const domain of await chainDomains()) results.push(...(await planDomain(domain, requestId)));
    return results;
  }

  return {
    syncDomain,
    syncAll,
    planDomain,
    planAll,
    stop() {
      stopping.abort(new Error("the mirror is shutting down"));
      for (const r of retries.values()) clearTimeout(r.timer);
    },
  };
}

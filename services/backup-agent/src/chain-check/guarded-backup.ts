import { randomUUID } from "node:crypto";
import type { BackupFailed } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { LibvirtError } from "@vmbs/virt";
import type { BackupOutcome, BackupRequest } from "../backup-runner.js";
import type { ChainChecker } from "./chain-checker.js";
import type { CheckRequest, CheckSummary } from "./check-chain.js";
import { describeSpace, isOutOfSpace, readSpace } from "./disk-full.js";
import { BITMAPS_LOST_PATTERN } from "./observe-chain.js";

export interface GuardedBackupDeps {
  host: string;
  /** LOCAL_BACKUP_PATH, whose free space tells a full disk apart from other failures. */
  backupRoot: string;
  checker: ChainChecker;
  runBackup: (req: BackupRequest) => Promise<BackupOutcome>;
  publishFailed: (event: BackupFailed) => Promise<void>;
  logger: Logger;
  /** Pauses between tries of a check that libvirt did not answer (default LIBVIRT_RETRY_DELAYS_MS). */
  libvirtRetryDelaysMs?: readonly number[];
}

/*
 * A backup often fails because libvirtd went away (restarted, upgraded); the check that follows would then fail on
 * the same missing daemon. It is tried again while libvirtd comes back, about two minutes in all.
 */
export const LIBVIRT_RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000, 30_000, 30_000] as const;

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * One backup framed by chain checks (issue 3 item 3): a cheap check first (it acts only when the chain is
 * not fine as it is), the backup, and after a failure a strict check that repairs or restarts the chain —
 * except on a full backup disk, where the chain is kept (its unfinished checkpoint dropped in place) and no
 * full is started on the same full disk. The caller holds the domain's queue slot for the whole sequence.
 */
export function createGuardedBackup(deps: GuardedBackupDeps) {
  const { checker, logger } = deps;
  const retryDelays = deps.libvirtRetryDelaysMs ?? LIBVIRT_RETRY_DELAYS_MS;
  /** Domains whose check after a failed backup could not run: their next backup starts with a strict check. */
  const strictCheckOwed = new Set<string>();

  /** The strict check after a failed backup, tried again while libvirt does not answer. */
  async function checkAfterFailure(req: CheckRequest): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await checker.check(req);
        return;
      } catch (err) {
        if (!(err instanceof LibvirtError)) throw err;
        const delay = retryDelays[attempt];
        if (delay === undefined || req.signal?.aborted) {
          strictCheckOwed.add(req.domain);
          logger.error({ err, domain: req.domain }, "chain check after the failed backup could not run: the next backup checks strictly first");
          await checker.publish({
            type: "attention",
            domain: req.domain,
            trigger: req.trigger,
            requestId: req.requestId,
            reason: `the chain check after the failed backup could not run (${err.message}); the next backup of ${req.domain} checks its chain strictly first`,
          });
          return;
        }
        logger.warn({ err, domain: req.domain, retryInMs: delay }, "libvirt did not answer the chain check: trying again");
        await pause(delay, req.signal);
      }
    }
  }

  /**
   * `scheduled`: the domain exists and is not ignored, as the caller just established. Other requests go
   * straight to the runner, which refuses them with the reason.
   */
  return async function guardedBackup(req: BackupRequest, scheduled: boolean): Promise<BackupOutcome> {
    if (!scheduled) return deps.runBackup(req);
    const owed = strictCheckOwed.has(req.domain);
    const pre: CheckSummary = await checker.check({
      domain: req.domain,
      trigger: "before-backup",
      requestId: req.requestId,
      newChain: "defer",
      ...(owed ? { strict: true } : { cheap: true }),
      knownState: req.known?.state,
      knownFolder: req.knownFolder,
    });
    strictCheckOwed.delete(req.domain);
    if (pre.plan === "needs-user" || pre.result === "failed" || pre.result === "waiting") {
      const event: BackupFailed = {
        type: "failed",
        host: deps.host,
        domain: req.domain,
        requestId: req.requestId,
        runId: randomUUID(),
        reason: `chain check before the backup: ${pre.reason}`,
        at: new Date().toISOString(),
      };
      await deps.publishFailed(event);
      return { ok: false, event };
    }
    // The check ended the chain and left its first full to this run.
    const level = pre.newChainPending ? "full" : req.level;
    // The check just read the domain: hand its state on rather than asking libvirt again (unless it shut the
    // domain down and started it again for the check, where only a fresh look is right).
    // Only an active state is handed on: a shut-off reading may predate a restart the check itself made.
    const known = pre.state === "running" || pre.state === "paused" ? { name: req.domain, persistent: true, state: pre.state } : undefined;
    // A check that carried out nothing hands its observation on; one that acted changed the folder: read again.
    const outcome = await deps.runBackup({ ...req, level, known, knownFolder: pre.unchanged });
    if (outcome.ok || req.signal?.aborted) return outcome;
    const space = await readSpace(deps.backupRoot);
    if (isOutOfSpace(outcome.event.reason, space)) {
      const diskFull = describeSpace(deps.backupRoot, space);
      logger.warn({ domain: req.domain, reason: outcome.event.reason, space }, "backup failed on a full disk: keeping the chain");
      await checkAfterFailure({ domain: req.domain, trigger: "after-failure", requestId: req.requestId, diskFull, newChain: "defer", signal: req.signal });
      return outcome;
    }
    logger.warn({ domain: req.domain, reason: outcome.event.reason }, "backup failed: checking the chain strictly");
    await checkAfterFailure({
      domain: req.domain,
      trigger: "after-failure",
      requestId: req.requestId,
      strict: true,
      bitmapsReportedLost: BITMAPS_LOST_PATTERN.test(outcome.event.reason),
      newChain: "run",
      // The new chain's full this check may start is cancelled like the backup itself (stop, lost lease).
      signal: req.signal,
    });
    return outcome;
  };
}

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { BackupCompleted, BackupEvent, BackupFailed, BackupLevel, BackupProgress, BackupStarted, HookRun } from "@vmbs/contracts";
import type { DomainSelection, EffectivePolicy } from "@vmbs/config";
import { archiveChainFolder, chainFolderPath, dataFilesOfCheckpoint, followDataFiles, readChainFolder, recordChecksums, type ChainFolder, type FileLister } from "@vmbs/chain";
import { runEngineBackup, type DomainInfo, type EngineRunResult, type Libvirt } from "@vmbs/virt";
import type { Logger } from "@vmbs/logger";
import { planBackup } from "./plan-backup.js";
import { describeHookFailure, runHook } from "./run-hook.js";
import { saveTpmState } from "./save-tpm-state.js";
import { defaultProgressIntervalMs, reportProgress } from "./backup-progress.js";
import type { PublishChainEvent } from "@vmbs/bus";

export interface BackupRunnerDeps {
  host: string;
  backupRoot: string;
  libvirtUri: string;
  libvirt: Libvirt;
  /** VIRTNBDBACKUP_ARGS after filterExtraArgs. */
  engineArgs: readonly string[];
  /** VMBS_ENGINE_STALL_TIMEOUT in ms: a run without a log line or output growth for this long is cancelled; 0 = off. */
  engineStallTimeoutMs?: number;
  /** VM_ALLOWED_LIST and VM_IGNORED_LIST: a domain they leave out is never backed up. */
  selection: DomainSelection;
  timeZone?: string;
  publish: (event: BackupEvent | BackupFailed) => Promise<void>;
  /** Sends the run's progress while the engine runs (ephemeral: not through the outbox, never awaited). */
  publishProgress?: (progress: BackupProgress) => void;
  /** Period of the progress messages; default 2 s. */
  progressIntervalMs?: number;
  /** Announces a destructive chain step (here: archiving the chain before a requested full). */
  publishChain: PublishChainEvent;
  logger: Logger;
  /** Where the chain folder is read: the local disk by default (a test counts the reads). */
  chainFiles?: FileLister;
  /** The domain's hooks and excluded disks now (VMBS_POLICY_FILE); none by default. */
  policyOf?(domain: string): Pick<EffectivePolicy, "hooks" | "excludeDisks">;
}

export interface BackupRequest {
  domain: string;
  level: BackupLevel;
  requestId?: string;
  signal?: AbortSignal;
  /** The domain as just looked up by the caller (inside the same queue slot), sparing a second lookup. */
  known?: DomainInfo;
  /** The chain folder as the caller read it under the same lease, unchanged since, sparing a second read. */
  knownFolder?: ChainFolder;
}

/** How long a failed run waits for QEMU to finish aborting its backup job. */
const JOB_GONE_TIMEOUT_MS = 60_000;

export type BackupOutcome = { ok: true; event: BackupCompleted } | { ok: false; event: BackupFailed };

/** Runs one domain's backup end to end — checks, plan, engine, verification — and announces each step. */
export function createBackupRunner(deps: BackupRunnerDeps) {
  const { libvirt, logger } = deps;

  return async function runBackup(req: BackupRequest): Promise<BackupOutcome> {
    const runId = randomUUID();
    const log = logger.child({ runId, domain: req.domain, requestId: req.requestId });
    const base = { host: deps.host, domain: req.domain, requestId: req.requestId, runId };
    const startedAt = Date.now();
    // The `started` event goes out while the engine starts (it is not worth the engine's wait); every later event
    // of the run is announced after it.
    let announcedStart: Promise<void> = Promise.resolve();
    const fail = async (reason: string, extra: Partial<BackupFailed> = {}): Promise<BackupOutcome> => {
      await announcedStart;
      const event: BackupFailed = { ...base, type: "failed", reason, at: new Date().toISOString(), durationMs: Date.now() - startedAt, bytesWritten: 0, ...extra };
      log.warn({ reason }, "backup failed");
      await deps.publish(event);
      return { ok: false, event };
    };

    const domain = req.known ?? (await libvirt.domainInfo(req.domain));
    if (!domain?.persistent) return fail(`unknown domain: host ${deps.host} has no persistent libvirt domain named ${JSON.stringify(req.domain)}`);
    const notScheduled = deps.selection.whyNotScheduled(req.domain);
    if (notScheduled !== undefined) return fail(`domain is ${notScheduled} and is never backed up`);

    const folderPath = chainFolderPath(deps.backupRoot, req.domain);
    const before = req.knownFolder ?? (await readChainFolder(folderPath, req.domain, deps.chainFiles));
    const plan = planBackup({ requested: req.level, folder: before, state: domain.state });
    if (plan.kind === "refuse") return fail(plan.reason);

    let archivedTo: string | undefined;
    if (plan.archiveFirst) {
      archivedTo = await archiveChainFolder(deps.backupRoot, req.domain, deps.timeZone, before);
      log.info({ archivedTo }, "archived the previous chain folder before a new full backup");
      await deps.publishChain({
        type: "archived",
        domain: req.domain,
        requestId: req.requestId,
        trigger: "backup",
        step: `archive → ${archivedTo}`,
        folders: [archivedTo],
        reason: `a ${req.level} backup starts a new chain, so the current one was archived as ${archivedTo}`,
      });
    }
    const started: BackupStarted = { ...base, type: "started", level: plan.level, requestedLevel: req.level, at: new Date().toISOString() };
    announcedStart = deps.publish(started).catch((err: unknown) => log.warn({ err }, "could not announce the start of the backup"));
    log.info({ level: plan.level, startPaused: plan.startPaused }, "backup started");

    // From here on every outcome runs the post hook first, and the final event lists the hooks that ran.
    const policy = deps.policyOf?.(req.domain);
    const hooks = policy?.hooks ?? {};
    const hookRuns: HookRun[] = [];
    const hookEnv = { VMBS_HOST: deps.host, VMBS_DOMAIN: req.domain, VMBS_LEVEL: plan.level };
    const runPostHook = async (outcome: "completed" | "failed", checkpoint?: string): Promise<void> => {
      if (!hooks.post) return;
      const run = await runHook("post", hooks.post, { ...hookEnv, VMBS_OUTCOME: outcome, ...(checkpoint ? { VMBS_CHECKPOINT: checkpoint } : {}) });
      hookRuns.push(run);
      if (!run.ok) log.warn({ hook: run }, describeHookFailure(run));
    };
    const failAfterStart = async (reason: string, extra: Partial<BackupFailed>): Promise<BackupOutcome> => {
      await runPostHook("failed");
      return fail(reason, { ...extra, ...(hookRuns.length > 0 ? { hooks: hookRuns } : {}) });
    };
    if (hooks.pre) {
      const run = await runHook("pre", hooks.pre, hookEnv, req.signal);
      hookRuns.push(run);
      if (!run.ok && hooks.pre.onFailure === "fail") return failAfterStart(`${describeHookFailure(run)}; the backup did not run`, { level: plan.level });
      if (!run.ok) log.warn({ hook: run }, `${describeHookFailure(run)}; going on (onFailure: continue)`);
    }

    let result: EngineRunResult | undefined;
    let startedByUs = false;
    // The new data files are hashed as the engine writes them, so their checksums are ready when it exits.
    const hasher = followDataFiles(folderPath);
    // Whether the domain has a TPM whose state goes with the checkpoint: asked while the engine runs, not after.
    const tpmOfDomain = libvirt.tpmEmulator(req.domain);
    tpmOfDomain.catch(() => undefined); // read after the engine; a failure there, not an unhandled rejection here
    const progress = deps.publishProgress
      ? reportProgress({
          bytesSoFar: hasher.bytesSoFar,
          intervalMs: deps.progressIntervalMs ?? defaultProgressIntervalMs,
          publish: (figures) => deps.publishProgress!({ ...base, type: "progress", at: new Date().toISOString(), ...figures }),
        })
      : undefined;
    try {
      if (plan.startPaused) {
        await libvirt.startPaused(req.domain);
        startedByUs = true;
      }
      result = await runEngineBackup({
        domain: req.domain,
        level: plan.level,
        outputDir: folderPath,
        uri: deps.libvirtUri,
        // After VIRTNBDBACKUP_ARGS: the engine keeps the last --exclude, so the domain's own list wins.
        extraArgs: policy?.excludeDisks.length ? [...deps.engineArgs, "--exclude", policy.excludeDisks.join(",")] : deps.engineArgs,
        signal: req.signal,
        stallTimeoutMs: deps.engineStallTimeoutMs,
        onLine: (line) => {
          log.debug({ engine: line });
          progress?.onEngineLine(line);
        },
      });
    } catch (err) {
      return failAfterStart(`could not run the backup: ${(err as Error).message}`, { level: plan.level });
    } finally {
      progress?.stop();
      if (!result?.succeeded) {
        await hasher.stop();
        await abortLeftoverJob(libvirt, req.domain, log);
      }
      if (startedByUs) await libvirt.destroy(req.domain).catch((err: unknown) => log.warn({ err }, "could not stop the domain started for the backup"));
    }

    const extra = { level: plan.level, durationMs: Date.now() - startedAt };
    if (!result.succeeded) return failAfterStart(engineFailureReason(result, req.signal), extra);
    const streamed = await hasher.finish();
    // Read again on purpose: the engine wrote the folder, and the new checkpoint is judged from what is on disk.
    const after = await readChainFolder(folderPath, req.domain, deps.chainFiles);
    const checked = checkNewCheckpoint(before, after, plan.level, archivedTo !== undefined);
    if (!checked.ok) return failAfterStart(checked.reason, extra);
    const bytesWritten = dataFilesOfCheckpoint(after, checked.checkpoint).reduce((sum, f) => sum + f.size, 0);
    // A checkpoint of a TPM domain without its TPM state would restore a guest whose sealed keys are gone.
    const tpm = await tpmOfDomain
      .then((emulator) => saveTpmState(emulator, after, checked.checkpoint))
      .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    if (tpm instanceof Error) return failAfterStart(`the disks are backed up as ${checked.checkpoint}, but the TPM state could not be copied: ${tpm.message}`, extra);
    if (tpm.kind === "skipped") log.warn(`the TPM state is not backed up: ${tpm.why}`);
    // Only this run's data, hashed while the engine wrote it. The backup itself is good without checksums: a
    // checkpoint without them is reported by drills as unverified, not as broken.
    await recordChecksums(tpm.folder, checked.checkpoint, req.signal, streamed).then(
      (entries) => log.debug({ checkpoint: checked.checkpoint, files: entries.length, hashedWhileWritten: streamed.size }, "checksums recorded"),
      (err: unknown) => log.warn({ err, checkpoint: checked.checkpoint }, "could not record the checksums of the new data files"),
    );
    await runPostHook("completed", checked.checkpoint);
    const event: BackupCompleted = {
      ...base,
      ...extra,
      ...(hookRuns.length > 0 ? { hooks: hookRuns } : {}),
      type: "completed",
      checkpoint: checked.checkpoint,
      bytesWritten,
      engineMs: result.durationMs,
      folder: req.domain,
      archivedTo,
      at: new Date().toISOString(),
    };
    log.info({ checkpoint: event.checkpoint, bytesWritten, durationMs: event.durationMs }, "backup completed");
    await announcedStart;
    await deps.publish(event);
    return { ok: true, event };
  };
}

/** A killed or failed engine can leave the libvirt backup job running, which blocks every later backup. */
async function abortLeftoverJob(libvirt: Libvirt, domain: string, log: Logger): Promise<void> {
  try {
    if (await libvirt.jobActive(domain)) {
      await libvirt.abortJob(domain);
      log.warn("aborted a libvirt backup job left behind by the engine");
    }
  } catch (err) {
    log.debug({ err }, "no job to abort (domain gone or not running)");
  }
  await waitJobGone(libvirt, domain, log);
}

/**
 * An abort (the engine's own on SIGINT, or ours) ends in QEMU asynchronously: wait until no job and no backup
 * block job is left, so the next backup of the domain does not find one and refuse to start.
 */
async function waitJobGone(libvirt: Libvirt, domain: string, log: Logger): Promise<void> {
  const busy = async () => (await libvirt.jobActive(domain)) || (await libvirt.backupBlockJobActive(domain));
  const deadline = Date.now() + JOB_GONE_TIMEOUT_MS;
  try {
    while (await busy()) {
      if (Date.now() > deadline) return log.warn({ waitedMs: JOB_GONE_TIMEOUT_MS }, "the aborted backup job is still winding down");
      await sleep(250);
    }
  } catch (err) {
    log.debug({ err }, "no job to wait for (domain gone or not running)");
  }
}

/** Why a run was cancelled: a lost chain lease says so; a plain stop carries no reason of its own. */
function cancelReason(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason;
  return reason instanceof Error && reason.name !== "AbortError" ? reason.message : "the agent is shutting down";
}

function engineFailureReason(result: EngineRunResult, signal: AbortSignal | undefined): string {
  if (result.stalledMs !== undefined)
    return `backup cancelled: virtnbdbackup made no progress for ${result.stalledMs / 1000} s (no log line, no output growth; VMBS_ENGINE_STALL_TIMEOUT)`;
  if (result.cancelled) return `backup cancelled: ${cancelReason(signal)}`;
  const errors = [...new Set(result.errors)].slice(-2);
  if (errors.length > 0) return `virtnbdbackup: ${errors.join(" / ")}`;
  const tail = result.lines.filter((l) => l.trim() !== "").slice(-1)[0];
  return `virtnbdbackup exited with code ${result.exitCode ?? "?"}${tail ? `: ${tail}` : ""}`;
}

/** The engine's own success line is not enough: the chain must have grown by exactly one complete checkpoint. */
function checkNewCheckpoint(
  before: ChainFolder,
  after: ChainFolder,
  level: "full" | "inc",
  archived: boolean,
): { ok: true; checkpoint: string } | { ok: false; reason: string } {
  const expectedLength = level === "full" ? 1 : (archived ? 0 : (before.cpt?.length ?? 0)) + 1;
  const cpt = after.cpt ?? [];
  const checkpoint = cpt[cpt.length - 1];
  if (cpt.length !== expectedLength || !checkpoint)
    return { ok: false, reason: `the checkpoint list has ${cpt.length} entries after the run, expected ${expectedLength}` };
  if (dataFilesOfCheckpoint(after, checkpoint).length === 0)
    return { ok: false, reason: `checkpoint ${checkpoint} was recorded but none of its data files exist` };
  return { ok: true, checkpoint };
}

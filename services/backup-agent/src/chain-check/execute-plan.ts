import { setTimeout as sleep } from "node:timers/promises";
import { archiveFolderName, removeToolFiles, setFolderAside, type ChainPlan, type ChainStep } from "@vmbs/chain";
import type { ChainEventType } from "@vmbs/contracts";
import { removeImageBitmap, waitForDomainState, type DomainState, type Libvirt } from "@vmbs/virt";
import type { Logger } from "@vmbs/logger";
import { archiveChainFolder, chainFolderPath } from "@vmbs/chain";
import type { ChainEventInput, PublishChainEvent } from "@vmbs/bus";
import { deleteChainFiles, rewriteCpt } from "./folder-effects.js";
import { ENGINE_TMP_DIR } from "./stale-tmp.js";
import { removeStrayLiveBitmaps } from "./stray-bitmaps.js";
import { cleanTmp, killQemuNbd } from "./tmp-effects.js";

export interface ExecutePlanDeps {
  libvirt: Libvirt;
  backupRoot: string;
  timeZone?: string;
  /** VM_ALLOW_POWERCYCLE: the agent may shut a domain down to judge its chain. */
  allowPowercycle: boolean;
  /** VM_WAIT_TIME in seconds: how long a shutdown may take. */
  waitTimeSec: number;
  publish: PublishChainEvent;
  logger: Logger;
  /** Runs the full backup of a new chain (cancelled through `signal`); resolves true when it completed. */
  runFull: (domain: string, signal?: AbortSignal) => Promise<boolean>;
  tmpDir?: string;
}

/** What the check around this plan is for; copied into every event. */
export interface ExecuteContext {
  domain: string;
  trigger: string;
  requestId?: string;
  /**
   * "run": start-new-chain runs the full backup now. "defer": the caller is about to run a backup anyway;
   * it is told to make that one a full.
   */
  newChain: "run" | "defer";
  /** The domain's state as observed for this plan (steps other than a shutdown leave it as it was). */
  knownState?: DomainState;
  /** Cancels a new chain's full backup (e.g. the chain lease was lost). */
  signal?: AbortSignal;
}

export type ExecuteResult =
  | { status: "done"; newChain: "none" | "completed" | "deferred"; archived: string[] }
  | { status: "replan"; archived: string[] }
  | { status: "waiting"; archived: string[] }
  | { status: "failed"; step: string; error: string; archived: string[] };

/** The event type announcing a finished step; undefined for steps announced by other means. */
const eventOf: Record<ChainStep["op"], ChainEventType | undefined> = {
  "abort-job": "repaired",
  "kill-qemu-nbd": "repaired",
  "clean-tmp": "repaired",
  "delete-files": "deleted",
  "delete-checkpoint": "pruned",
  "remove-bitmap": "pruned",
  "rewrite-cpt": "repaired",
  "archive-folder": "archived",
  "delete-folder": "deleted",
  "require-shutdown": undefined,
  "start-new-chain": undefined,
};

/** One line naming a step, for logs and the event's `step` field. */
function describeStep(step: ChainStep): string {
  switch (step.op) {
    case "kill-qemu-nbd":
      return `kill-qemu-nbd ${step.pidFiles.join(", ")}`;
    case "clean-tmp":
      return `clean-tmp ${step.paths.join(", ")}`;
    case "delete-files":
      return `delete-files ${step.files.join(", ")}`;
    case "delete-checkpoint":
      return `delete-checkpoint ${step.name}${step.metadataOnly ? " --metadata" : ""}`;
    case "remove-bitmap":
      return `remove-bitmap ${step.name} from ${step.image}`;
    case "rewrite-cpt":
      return `rewrite-cpt [${step.checkpoints.join(", ")}]`;
    default:
      return step.op;
  }
}


/** Carries out a plan's steps in order, announcing each destructive one; stops at the first failure. */
export function createPlanExecutor(deps: ExecutePlanDeps) {
  const { libvirt } = deps;
  const tmpDir = deps.tmpDir ?? ENGINE_TMP_DIR;

  /**
   * delete-folder: only the tool's own files go (rmdir, never rm -r). When anything else is left, the folder
   * is moved aside with it so the new chain starts in a clean folder; returns where, and what was kept.
   */
  async function clearFolder(domain: string, folder: string): Promise<{ aside: string; kept: string[] } | undefined> {
    const { kept, folderRemoved } = await removeToolFiles(folder, domain);
    if (folderRemoved) return undefined;
    return { aside: await setFolderAside(deps.backupRoot, domain, archiveFolderName(domain, Date.now(), deps.timeZone)), kept };
  }

  /** Does one step; returns the archive folder name for archive-folder, or the set-aside folder of delete-folder. */
  async function perform(domain: string, folder: string, step: ChainStep): Promise<{ archive?: string; aside?: { aside: string; kept: string[] } } | undefined> {
    switch (step.op) {
      case "abort-job":
        await libvirt.abortJob(domain);
        // The abort is asynchronous in QEMU; the next steps need the job (and its socket and scratch) gone.
        for (let i = 0; i < 60 && (await libvirt.jobActive(domain).catch(() => false)); i++) await sleep(250);
        return;
      case "kill-qemu-nbd":
        await killQemuNbd(step.pidFiles, tmpDir);
        return;
      case "clean-tmp":
        return void (await cleanTmp(step.paths, tmpDir));
      case "delete-files":
        return void (await deleteChainFiles(folder, domain, step.files));
      case "delete-checkpoint":
        return void (await libvirt.deleteCheckpoint(domain, step.name, step.metadataOnly));
      case "remove-bitmap": {
        // qemu-img on a running domain's image corrupts it: the state is asserted right before, every time.
        const state = await libvirt.domainState(domain);
        if (state !== "shut off") throw new Error(`refusing to remove bitmap ${step.name}: ${domain} is ${state}, not shut off`);
        return void (await removeImageBitmap(step.image, step.name));
      }
      case "rewrite-cpt":
        return void (await rewriteCpt(folder, domain, step.checkpoints));
      case "archive-folder":
        return { archive: await archiveChainFolder(deps.backupRoot, domain, deps.timeZone) };
      case "delete-folder":
        return { aside: await clearFolder(domain, folder) };
      case "require-shutdown":
      case "start-new-chain":
        throw new Error(`${step.op} is not a plain step`);
    }
  }

  return async function executePlan(plan: ChainPlan, ctx: ExecuteContext): Promise<ExecuteResult> {
    const { domain } = ctx;
    const folder = chainFolderPath(deps.backupRoot, domain);
    const log = deps.logger.child({ domain, trigger: ctx.trigger, plan: plan.kind });
    const base = { domain, trigger: ctx.trigger, requestId: ctx.requestId, plan: plan.kind };
    const announce = (e: Omit<ChainEventInput, keyof typeof base>) =>
      deps.publish({ ...base, ...e }).catch((err: unknown) => log.warn({ err }, "could not publish a chain event"));
    const archived: string[] = [];
    let newChain: "none" | "completed" | "deferred" = "none";
    let straysDone = plan.kind === "needs-user";
    /** Once per plan, before the next backup can trip over them: see removeStrayLiveBitmaps. */
    const removeStrays = async (): Promise<ExecuteResult | undefined> => {
      if (straysDone) return undefined;
      straysDone = true;
      try {
        for (const name of await removeStrayLiveBitmaps(libvirt, domain, ctx.knownState)) {
          log.warn({ bitmap: name }, "removed a live bitmap that libvirt has no checkpoint for");
          await announce({
            type: "pruned",
            step: `remove-live-bitmap ${name}`,
            reason: `QEMU holds bitmap ${name} but libvirt has no checkpoint ${name} (deleted by hand or lost); it would make the next backup fail with "Bitmap already exists". ${plan.reason}`,
          });
        }
        return undefined;
      } catch (err) {
        const error = (err as Error).message;
        await announce({ type: "failed", step: "remove-live-bitmap", reason: `removing stray live bitmaps failed: ${error}. Planned because: ${plan.reason}` });
        return { status: "failed", step: "remove-live-bitmap", error, archived };
      }
    };

    for (const step of plan.steps) {
      const what = describeStep(step);
      if (step.op === "require-shutdown") {
        if (!deps.allowPowercycle) {
          log.warn({ reason: plan.reason }, "the domain must be shut down by a person");
          await announce({ type: "attention", step: what, reason: `${plan.reason} Shut ${domain} down (or set VM_ALLOW_POWERCYCLE) so its chain can be checked.` });
          return { status: "waiting", archived };
        }
        log.warn("shutting the domain down to check its chain (VM_ALLOW_POWERCYCLE)");
        await libvirt.shutdown(domain).catch((err: unknown) => log.warn({ err }, "shutdown request failed"));
        if (await waitForDomainState(libvirt, domain, "shut off", { timeoutMs: deps.waitTimeSec * 1000, tolerateErrors: true })) return { status: "replan", archived };
        await announce({ type: "attention", step: what, reason: `${plan.reason} ${domain} did not shut down within VM_WAIT_TIME (${deps.waitTimeSec} s); shut it down by hand.` });
        return { status: "waiting", archived };
      }
      if (step.op === "start-new-chain") {
        const failed = await removeStrays();
        if (failed) return failed;
        if (ctx.newChain === "defer") {
          newChain = "deferred";
          continue;
        }
        log.info("starting a new chain with a full backup");
        if (!(await deps.runFull(domain, ctx.signal))) {
          await announce({ type: "failed", step: what, reason: `${plan.reason} The full backup of the new chain failed (see its backup event); the next run tries again.` });
          return { status: "failed", step: what, error: "the full backup of the new chain failed", archived };
        }
        newChain = "completed";
        continue;
      }
      try {
        const done = await perform(domain, folder, step);
        const archive = done?.archive;
        const aside = done?.aside;
        if (archive) archived.push(archive);
        log.info({ step: what, archive, aside }, "chain step done");
        const type = eventOf[step.op];
        if (aside) {
          const kept = aside.kept.join(", ");
          await announce({ type: "deleted", step: `${what} (own files only) → moved aside as ${aside.aside}`, folders: [aside.aside], reason: plan.reason });
          await announce({
            type: "attention",
            step: what,
            folders: [aside.aside],
            reason: `${folder} held files virtnbdbackup did not write (${kept}). They were not deleted: only the backup's own files were removed and the folder was moved aside as ${aside.aside}; look through it and remove it when it is no longer needed.`,
          });
        } else if (type) await announce({ type, step: archive ? `archive → ${archive}` : what, folders: archive ? [archive] : undefined, reason: plan.reason });
      } catch (err) {
        const error = (err as Error).message;
        log.error({ err, step: what }, "chain step failed; the rest of the plan is skipped");
        await announce({ type: "failed", step: what, reason: `${what} failed: ${error}. Planned because: ${plan.reason}` });
        return { status: "failed", step: what, error, archived };
      }
    }
    return (await removeStrays()) ?? { status: "done", newChain, archived };
  };
}
export type ExecutePlan = ReturnType<typeof createPlanExecutor>;

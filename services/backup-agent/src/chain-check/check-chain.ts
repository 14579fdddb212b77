import type { DomainState } from "@vmbs/virt";
import { checkChainIntegrity, endChainOnDamagedData, keepChainOnFullDisk, planChain, type ChainFolder, type ChainPlan } from "@vmbs/chain";
import type { Logger } from "@vmbs/logger";
import type { PublishChainEvent } from "@vmbs/bus";
import type { ExecutePlan, ExecuteResult } from "./execute-plan.js";
import type { ObserveChain } from "./observe-chain.js";

export interface CheckChainDeps {
  observe: ObserveChain;
  execute: ExecutePlan;
  publish: PublishChainEvent;
  logger: Logger;
  /** CHECK_BACKUPS_INTEGRITY. */
  checkIntegrity: boolean;
  /** Whether the host rebooted since the last recorded boot (read once at start). */
  bootChanged: () => boolean;
  /** Starts a domain again that a check shut down (VM_ALLOW_POWERCYCLE). */
  startDomain: (domain: string) => Promise<void>;
}

export interface CheckRequest {
  domain: string;
  /** startup, after-failure, before-backup, command. */
  trigger: string;
  requestId?: string;
  /** No in-place repair (after a failed backup). */
  strict?: boolean;
  /** The failed run's engine said the bitmaps are missing or broken. */
  bitmapsReportedLost?: boolean;
  /** Also check the data files (only when CHECK_BACKUPS_INTEGRITY is on; reads every file). */
  integrity?: boolean;
  /** "defer": a backup follows right away, so a new chain's full is left to it. */
  newChain: "run" | "defer";
  /** Only observe and plan; carry out nothing (and announce nothing) when the chain is to be kept as is. */
  cheap?: boolean;
  /** The domain's state as the caller just read it (same queue slot): spares a lookup on the backup path. */
  knownState?: DomainState;
  /** The chain folder as the caller just read it (same lease, unchanged since): spares a second read. */
  knownFolder?: ChainFolder;
  /** Cancels a full backup the check starts (e.g. the chain lease was lost). */
  signal?: AbortSignal;
  /**
   * The backup just failed because the backup disk is full; the text describes the free space. The chain is
   * kept: an unfinished checkpoint is repaired in place, nothing is archived, no full is started.
   */
  diskFull?: string;
}

export interface CheckSummary {
  domain: string;
  plan: ChainPlan["kind"];
  reason: string;
  result: ExecuteResult["status"] | "skipped";
  /** The next backup of this domain must be a full into a fresh folder. */
  newChainPending: boolean;
  /** The domain's state in the last observation; after a shutdown for the check it predates the restart. */
  state: DomainState;
  archived: string[];
  /** The chain folder as observed, when the check carried out nothing (a cheap keep): still what is on disk. */
  unchanged?: ChainFolder;
}

/** At most this many observe-plan-execute rounds (a shutdown, then the real plan). */
const MAX_ROUNDS = 3;

/** observe → plan → execute for one domain; the caller holds the domain's queue slot. */
export function createChainCheck(deps: CheckChainDeps) {
  return async function checkChain(req: CheckRequest): Promise<CheckSummary> {
    const log = deps.logger.child({ domain: req.domain, trigger: req.trigger, requestId: req.requestId });
    const base = { domain: req.domain, trigger: req.trigger, requestId: req.requestId };
    let summary: CheckSummary | undefined;
    let shutDown = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // Only the first round may trust the caller's state and folder: a later round follows a shutdown.
      const knownState = round === 0 ? req.knownState : undefined;
      const snapshot = await deps.observe(req.domain, {
        knownState,
        knownFolder: round === 0 ? req.knownFolder : undefined,
        bootChanged: deps.bootChanged(),
        strict: req.strict === true,
        bitmapsReportedLost: req.bitmapsReportedLost,
        repairInPlace: req.diskFull !== undefined,
      });
      let plan = planChain(snapshot);
      if (req.diskFull !== undefined) {
        plan = keepChainOnFullDisk(plan, req.diskFull);
        if (plan.kind !== "needs-user") {
          const outcome = plan.kind === "delete-partial-chain" ? "no new chain is started now" : "the chain is kept";
          await deps.publish({ ...base, type: "attention", plan: plan.kind, reason: `backup disk full: ${req.diskFull}, ${outcome}. ${plan.reason}` });
        }
      }
      if (plan.kind === "keep" && req.integrity && deps.checkIntegrity) {
        const fault = await checkChainIntegrity(snapshot.folder);
        if (fault) plan = endChainOnDamagedData(snapshot, plan, fault);
      }
      log.info({ plan: plan.kind, steps: plan.steps.map((s) => s.op), reason: plan.reason }, "chain planned");
      if (req.cheap && plan.kind === "keep" && plan.steps.length === 0) {
        return { domain: req.domain, plan: plan.kind, reason: plan.reason, result: "skipped", newChainPending: false, archived: [], state: snapshot.domainState, unchanged: snapshot.folder };
      }
      // A plan that asks for a shutdown announces itself when it gets there (with or without VM_ALLOW_POWERCYCLE).
      if (plan.kind === "needs-user" && !plan.steps.some((st) => st.op === "require-shutdown")) {
        await deps.publish({ ...base, type: "attention", plan: plan.kind, reason: plan.reason });
      }
      const result = await deps.execute(plan, { ...base, newChain: req.newChain, knownState, signal: req.signal });
      const archived = [...(summary?.archived ?? []), ...result.archived];
      summary = {
        domain: req.domain,
        plan: plan.kind,
        reason: plan.reason,
        result: result.status,
        newChainPending: result.status === "done" && result.newChain === "deferred",
        archived,
        state: snapshot.domainState,
      };
      if (result.status !== "replan") break;
      shutDown = true;
    }
    if (shutDown) {
      // The domain was running before we shut it down for the check; it runs again whatever the outcome.
      await deps.startDomain(req.domain).catch(async (err: unknown) => {
        log.error({ err }, "could not start the domain again after its chain check");
        await deps.publish({ ...base, type: "attention", reason: `${req.domain} was shut down for its chain check and could not be started again: ${(err as Error).message}` });
      });
    }
    const done = summary!;
    if (req.trigger !== "before-backup" || done.plan !== "keep") {
      await deps.publish({ ...base, type: "checked", plan: done.plan, folders: done.archived.length > 0 ? done.archived : undefined, reason: `${done.result}: ${done.reason}` });
    }
    return done;
  };
}
export type CheckChain = ReturnType<typeof createChainCheck>;

import type { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { backupCommandSchema, parsePayload } from "@vmbs/contracts";
import type { ChainGuard, JournaledHandler, OutboxEvent, PublishBackupEvent } from "@vmbs/bus";
import type { Logger } from "@vmbs/logger";
import type { DomainInfo } from "@vmbs/virt";
import { answerFor, createBackupQueue } from "./backup-queue.js";
import { requestIdOf } from "./handle-chain-command.js";
import type { createGuardedBackup } from "./chain-check/guarded-backup.js";
import type { createInventory } from "./inventory.js";
import { resumeBackup } from "./resume-rules.js";
import type { ChainUpkeep } from "./rotation/chain-upkeep.js";

export interface BackupCommandHandlerDeps {
  host: string;
  logger: Logger;
  /** The agent's inventory: which domains are scheduled, as of the last heartbeat. */
  inventory: Pick<ReturnType<typeof createInventory>, "current">;
  /** One domain's libvirt state, undefined for an ignored or unknown one. */
  lookup(domain: string): Promise<DomainInfo | undefined>;
  /** The domains a command without `domain` means: every scheduled one. */
  scheduledDomains(): Promise<string[]>;
  upkeep: ChainUpkeep;
  guardedBackup: ReturnType<typeof createGuardedBackup>;
  runExclusive: ChainGuard;
  publish: PublishBackupEvent;
  /** Announces an event through the command journal (recorded as the command's outcome). */
  announce(event: OutboxEvent): Promise<void>;
  /** Collects the backup events `publish` sends within a run, for the commands that join it. */
  runEvents: AsyncLocalStorage<OutboxEvent[]>;
}

/** Backup commands one domain may hold (waiting or running); the next ones are refused until it holds fewer. */
const backupCommandsPerDomain = 8;
/** Backups of different domains at once: the 4 the backup consumer used to take at a time. */
const backupsAtOnce = 4;

/**
 * `vmbs.cmd.backup.<host>`: each named (or scheduled) domain's backup, rotated before and retained after, in the
 * domain's queue slot and chain lease. A command for a domain whose backup is already queued joins that run and
 * is answered with its events; a domain holding too many commands refuses the next with a `failed` event.
 */
export function createBackupCommandHandler(deps: BackupCommandHandlerDeps): JournaledHandler {
  const { host, logger, inventory, scheduledDomains, upkeep, guardedBackup, runExclusive, publish, announce, runEvents } = deps;
  // A run's backup events; undefined when the agent stopped before the run's turn came.
  const backups = createBackupQueue<OutboxEvent[] | undefined>({ maxPerDomain: backupCommandsPerDomain, maxRunning: backupsAtOnce });
  return async (msg, ctx, run) => {
    const parsed = parsePayload(backupCommandSchema, msg.data);
    if (!parsed.ok) {
      logger.warn({ seq: msg.seq, reason: parsed.reason }, "rejected a backup command");
      await publish({ type: "failed", host, requestId: requestIdOf(msg.data), runId: `msg-${msg.seq}`, reason: parsed.reason, at: new Date().toISOString() });
      return "term" as const;
    }
    const cmd = parsed.value;
    const targets = cmd.domain ? [cmd.domain] : await scheduledDomains();
    for (const domain of targets) {
      // Stopping: the command comes back at the next start, which skips the domains it finished (resumeBackup).
      if (ctx.signal.aborted) return "retry" as const;
      const resume = resumeBackup(host, run.interrupted, domain, cmd.level);
      if (run.interrupted) logger.warn({ domain, identity: run.identity, decision: resume }, "resuming an interrupted backup command");
      if (resume.kind === "skip") continue;
      const backupOne = async (leaseLost: AbortSignal) => {
        // The inventory (refreshed every heartbeat) answers "is it one of ours" without a libvirt round trip; a
        // domain it does not list yet (defined since the last beat) is looked up. The state comes from the check.
        const listed = inventory.current()?.domains.find((d) => d.name === domain);
        const known = listed?.scheduled ? undefined : await deps.lookup(domain);
        const scheduled = listed?.scheduled === true || Boolean(known?.persistent);
        // A chain at MAX_BACKUPS_PER_CHAIN is archived first, so this run starts the next chain. Otherwise the
        // folder as rotation read it is handed on: under the lease nothing else writes it, so that one read serves
        // the check and the run.
        const rotation = scheduled ? await upkeep.rotate(domain, "before-backup", false, cmd.requestId) : undefined;
        const request = { domain, level: resume.level, requestId: cmd.requestId, signal: AbortSignal.any([ctx.signal, leaseLost]), known, knownFolder: rotation?.unchanged };
        await guardedBackup(request, scheduled);
        // A check after a failure may have archived the chain: keep the archives within bounds (while it is ours).
        if (scheduled && !leaseLost.aborted) await upkeep.retain(domain, "after-backup", cmd.requestId);
      };
      const events: OutboxEvent[] = [];
      const admission = backups(domain, resume.level, async () => {
        if (ctx.signal.aborted) return undefined;
        return runEvents.run(events, async () => {
          await runExclusive(domain, backupOne).catch(async (err: unknown) => {
            logger.error({ err, domain }, "backup run crashed");
            // A run id of its own: the event's message id derives from it, and one command may fail for several domains.
            await publish({ type: "failed", host, domain, requestId: cmd.requestId, runId: randomUUID(), reason: `internal error: ${(err as Error).message}`, at: new Date().toISOString() });
          });
          return events;
        });
      });
      if (admission.kind === "refused") {
        // The first refusal of a flood and every 100th: the events name each one.
        if (admission.refusedInFlood === 1 || admission.refusedInFlood % 100 === 0)
          logger.warn({ domain, held: admission.held, refused: admission.refusedInFlood }, "backup commands refused: the domain holds as many as it may");
        const reason = `refused: ${domain} already has ${admission.held} backup commands waiting or running on ${host} (the most one domain may hold); this one was not queued`;
        await publish({ type: "failed", host, domain, requestId: cmd.requestId, runId: randomUUID(), reason, refused: true, at: new Date().toISOString() });
        continue;
      }
      const answer = await admission.result;
      // The agent stopped before this run's turn: back at the next start, not answered by a run cancelled on the spot.
      if (!answer) return "retry" as const;
      // Joined a run started by an earlier command: its events, announced (and recorded) as this command's too.
      if (admission.joined) for (const event of answer) await announce(answerFor(event, cmd.requestId, run.key));
    }
    return "ack" as const;
  };
}

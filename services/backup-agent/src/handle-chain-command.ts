import { chainCommandSchema, parsePayload } from "@vmbs/contracts";
import type { ChainGuard, CommandContext, CommandRun, Disposition, JsMsg, OutboxEvent, PublishChainEvent } from "@vmbs/bus";
import type { Logger } from "@vmbs/logger";

export interface ChainCommandDeps {
  /** The verb, for logs: "check", "rotate" or "retention". */
  verb: string;
  /** The work for one domain; runs inside the domain's queue slot and chain lease (`leaseLost` aborts when it goes). */
  runForDomain: (domain: string, requestId: string | undefined, leaseLost: AbortSignal) => Promise<unknown>;
  /** The dry run of the work (`dryRun: true`), under the same slot and lease; absent: the verb has none and refuses it. */
  planForDomain?: (domain: string, requestId: string | undefined) => Promise<unknown>;
  publish: PublishChainEvent;
  runExclusive: ChainGuard;
  /** For a redelivered command whose earlier run was interrupted: true when that run finished this domain. */
  doneBefore?: (domain: string, interrupted: readonly OutboxEvent[]) => boolean;
  /** The domains a command without `domain` means: every scheduled one. */
  scheduledDomains: () => Promise<string[]>;
  logger: Logger;
}

/** The caller's requestId of a rejected payload, so the failure can still be matched to the request. */
export function requestIdOf(data: Uint8Array): string | undefined {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(data));
    const id = typeof value === "object" && value !== null ? (value as { requestId?: unknown }).requestId : undefined;
    return typeof id === "string" && id.length <= 200 ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Handler of a chain command (`vmbs.cmd.check|rotate|retention.<host>`, payload chainCommandSchema): the work
 * per domain (with `dryRun`, its dry run), each in its queue slot; a bad payload, an unknown domain or a dry
 * run of a verb without one is a `failed` chain event.
 */
export function createChainCommandHandler(deps: ChainCommandDeps) {
  const { logger, publish } = deps;
  return async (msg: JsMsg, ctx: CommandContext, run?: CommandRun): Promise<Disposition> => {
    const parsed = parsePayload(chainCommandSchema, msg.data);
    if (!parsed.ok) {
      logger.warn({ seq: msg.seq, reason: parsed.reason }, `rejected a ${deps.verb} command`);
      await publish({ type: "failed", trigger: "command", requestId: requestIdOf(msg.data), reason: parsed.reason });
      return "term";
    }
    const { domain, requestId, dryRun } = parsed.value;
    const plan = deps.planForDomain;
    if (dryRun && !plan) {
      await publish({ type: "failed", domain, trigger: "command", requestId, reason: `${deps.verb} has no dry run (only retention has: vmbs retention --dry-run); nothing was done` });
      return "ack";
    }
    const scheduled = await deps.scheduledDomains();
    if (domain && !scheduled.includes(domain)) {
      await publish({ type: "failed", domain, trigger: "command", requestId, reason: `${domain} is not a scheduled domain of this host (unknown, in VM_IGNORED_LIST or outside VM_ALLOWED_LIST)` });
      return "ack";
    }
    for (const target of domain ? [domain] : scheduled) {
      if (ctx.signal.aborted) break;
      if (run?.interrupted && deps.doneBefore?.(target, run.interrupted)) {
        logger.warn({ domain: target, identity: run.identity }, `the interrupted ${deps.verb} command had finished this domain: not repeated`);
        continue;
      }
      await deps
        .runExclusive(target, (leaseLost) => (dryRun && plan ? plan(target, requestId) : deps.runForDomain(target, requestId, leaseLost)))
        .catch(async (err: unknown) => {
          logger.error({ err, domain: target }, `${deps.verb} crashed`);
          await publish({ type: "failed", domain: target, trigger: "command", requestId, reason: `${deps.verb} failed: ${(err as Error).message}` });
        });
    }
    return "ack";
  };
}

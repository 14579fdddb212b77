import { chainCommandSchema, parsePayload } from "@vmbs/contracts";
import type { CommandContext, Disposition, JsMsg } from "@vmbs/bus";
import type { Logger } from "@vmbs/logger";
import type { DomainQueue } from "../domain-queue.js";
import type { ChainChecker } from "./chain-checker.js";

export interface CheckCommandDeps {
  checker: ChainChecker;
  runExclusive: DomainQueue;
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

/** Handler of `vmbs.cmd.check.<host>`: a full chain check (with the data check) per domain, in its queue. */
export function createCheckCommandHandler(deps: CheckCommandDeps) {
  const { checker, logger } = deps;
  return async (msg: JsMsg, ctx: CommandContext): Promise<Disposition> => {
    const parsed = parsePayload(chainCommandSchema, msg.data);
    if (!parsed.ok) {
      logger.warn({ seq: msg.seq, reason: parsed.reason }, "rejected a check command");
      await checker.publish({ type: "failed", trigger: "command", requestId: requestIdOf(msg.data), reason: parsed.reason });
      return "term";
    }
    const { domain, requestId } = parsed.value;
    const scheduled = await deps.scheduledDomains();
    if (domain && !scheduled.includes(domain)) {
      await checker.publish({ type: "failed", domain, trigger: "command", requestId, reason: `${domain} is not a scheduled domain of this host (unknown or in VM_IGNORED_LIST)` });
      return "ack";
    }
    for (const target of domain ? [domain] : scheduled) {
      if (ctx.signal.aborted) break;
      await deps
        .runExclusive(target, () => checker.check({ domain: target, trigger: "command", requestId, integrity: true, newChain: "run" }))
        .catch(async (err: unknown) => {
          logger.error({ err, domain: target }, "chain check crashed");
          await checker.publish({ type: "failed", domain: target, trigger: "command", requestId, reason: `internal error: ${(err as Error).message}` });
        });
    }
    return "ack";
  };
}

import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { publishJson, type ChainLeases, type CommandContext, type Disposition, type JsMsg, type NatsConnection } from "@vmbs/bus";
import type { Config } from "@vmbs/config";
import { drillCommandSchema, drillEventSchema, drillScratchFolder, eventMessageId, parsePayload, subjects, type DrillChainResult, type DrillEvent, type DrillEventType } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { describeFaults, drillChain, drillTargets } from "./drill.js";

export interface DrillCommandHandlerDeps {
  config: Pick<Config, "HOST_ID" | "LOCAL_BACKUP_PATH" | "DRILL_SCRATCH_PATH">;
  nc: NatsConnection;
  logger: Logger;
  leases: ChainLeases;
  rootId: string;
  /** How long a drill waits for a busy chain (a running backup). */
  chainWaitMs: number;
}

/** Where drills restore to: `DRILL_SCRATCH_PATH`, else `<LOCAL_BACKUP_PATH>/.vmbs-drill`. */
export function drillScratchRoot(config: DrillCommandHandlerDeps["config"]): string {
  return config.DRILL_SCRATCH_PATH ?? join(config.LOCAL_BACKUP_PATH, drillScratchFolder);
}

/**
 * Restore drills of one host: `vmbs.cmd.drill.<host>` (optionally one domain) drills each chain under its chain
 * lease (see drill.ts) and announces `vmbs.evt.drill.<host>.started|completed|failed`. The scratch space
 * ({@link drillScratchRoot}) gets one folder per run, removed after it.
 */
export function createDrillCommandHandler(deps: DrillCommandHandlerDeps): (msg: JsMsg, ctx: CommandContext) => Promise<Disposition> {
  const { config, nc, logger } = deps;
  const host = config.HOST_ID;
  const root = config.LOCAL_BACKUP_PATH;
  const scratchRoot = drillScratchRoot(config);

  async function drill(command: { domain?: string; requestId?: string }, signal: AbortSignal): Promise<void> {
    const runId = randomUUID();
    const started = Date.now();
    let seq = 0;
    const emit = async (type: DrillEventType, extra: Partial<DrillEvent> = {}): Promise<void> => {
      const subject = subjects.evt.drill(host, type);
      const event = drillEventSchema.parse({
        type, host, runId,
        ...(command.domain !== undefined ? { domain: command.domain } : {}),
        ...(command.requestId !== undefined ? { requestId: command.requestId } : {}),
        ...extra,
        at: new Date().toISOString(),
      });
      await publishJson(nc, subject, event, eventMessageId(subject, `${runId}.${seq++}`));
    };
    await emit("started");
    const scratchDir = join(scratchRoot, runId);
    const chains: DrillChainResult[] = [];
    try {
      for (const target of await drillTargets(root, command.domain)) {
        signal.throwIfAborted();
        const chainStarted = Date.now();
        const result = await deps.leases
          .withLease(deps.rootId, target.domain, { op: "drill", waitMs: deps.chainWaitMs, signal }, (lease) =>
            drillChain({ backupRoot: root, scratchDir, signal: AbortSignal.any([signal, lease.signal]) }, target),
          )
          .catch((err: unknown): DrillChainResult => {
            // A stop ends the whole drill; a busy or lost lease, an unreadable folder is this chain's fault only.
            if (signal.aborted) throw err;
            const reason = `${target.set} could not be drilled: ${(err as Error).message}`;
            return { ...target, ok: false, checkpoints: 0, verifiedFiles: 0, unverifiedFiles: [], images: [], faults: [{ reason }], durationMs: Date.now() - chainStarted };
          });
        logger.info({ runId, set: result.set, ok: result.ok, faults: result.faults, verified: result.verifiedFiles, unverified: result.unverifiedFiles.length }, "chain drilled");
        chains.push(result);
      }
    } catch (err) {
      logger.warn({ err, runId }, "drill failed");
      await emit("failed", { chains, reason: (err as Error).message, durationMs: Date.now() - started });
      return;
    } finally {
      await rm(scratchDir, { recursive: true, force: true });
    }
    const durationMs = Date.now() - started;
    const broken = chains.find((c) => !c.ok);
    if (!broken) return emit("completed", { chains, durationMs });
    const first = broken.faults[0]!;
    await emit("failed", { chains, durationMs, failure: { domain: broken.domain, set: broken.set, ...first }, reason: describeFaults(chains) });
  }

  return async (msg, ctx) => {
    const parsed = parsePayload(drillCommandSchema, msg.data);
    const command = parsed.ok ? parsed.value : {};
    if (!parsed.ok) {
      const subject = subjects.evt.drill(host, "failed");
      const runId = randomUUID();
      const event: DrillEvent = { type: "failed", host, runId, at: new Date().toISOString(), reason: `drill command refused: ${parsed.reason}` };
      await publishJson(nc, subject, event, eventMessageId(subject, runId));
      return "term";
    }
    // A drill that failed is told in its event; running it again at once would find the same. One cut short by
    // a stop is run again after the restart.
    await drill(command, ctx.signal).catch((err: unknown) => logger.error({ err }, "drill event not published"));
    return ctx.signal.aborted ? "retry" : "ack";
  };
}

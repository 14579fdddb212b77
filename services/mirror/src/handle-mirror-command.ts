import { randomUUID } from "node:crypto";
import type { Disposition, JsMsg } from "@vmbs/bus";
import { mirrorCommandSchema, parsePayload, type MirrorEventInput } from "@vmbs/contracts";
import { describeTarget, type MirrorTarget } from "./mirror-target.js";
import type { MirrorSync } from "./sync-chains.js";

export interface MirrorCommandHandlerDeps {
  host: string;
  targets: MirrorTarget[];
  announce(event: MirrorEventInput): Promise<void>;
  sync: Pick<MirrorSync, "syncDomain" | "syncAll" | "planDomain" | "planAll">;
}

/**
 * `vmbs.cmd.mirror.<host>`: syncs the named domain now, or every chain (with `dryRun`: only says what those syncs
 * would archive and delete); a malformed command is a failed event.
 */
export function createMirrorCommandHandler(deps: MirrorCommandHandlerDeps): (msg: JsMsg) => Promise<Disposition> {
  const { host, targets, announce, sync } = deps;
  return async (msg) => {
    const parsed = parsePayload(mirrorCommandSchema, msg.data);
    if (!parsed.ok) {
      await announce({ type: "failed", host, runId: randomUUID(), trigger: "command", target: targets.map(describeTarget).join(" "), at: new Date().toISOString(), reason: parsed.reason });
      return "term";
    }
    const { domain, requestId, dryRun } = parsed.value;
    if (dryRun) await (domain ? sync.planDomain(domain, requestId) : sync.planAll(requestId));
    else if (domain) await sync.syncDomain(domain, "command", requestId);
    else await sync.syncAll("command", requestId);
    return "ack";
  };
}

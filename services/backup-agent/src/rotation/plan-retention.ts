import { chainArchiveName, chainFolderPath, needsRotation, readChainFolder } from "@vmbs/chain";
import { readRetentionDecision, type RetentionOptions } from "./apply-retention.js";
import { announce, type RotationDeps } from "./rotation-deps.js";

/** Options of {@link planRetention}: those of retention plus the chain length that decides rotation. */
export interface RetentionPlanOptions extends RetentionOptions {
  /** MAX_BACKUPS_PER_CHAIN (or the domain's maxBackupsPerChain); 0 = never rotate. */
  maxBackupsPerChain: number;
}

/** What a dry run found for one domain; everything is also announced as `planned` chain events. */
export interface RetentionPlan {
  domain: string;
  /** Archives retention would delete now. */
  wouldDelete: string[];
  /** Archives it keeps. */
  wouldKeep: string[];
  /** The archive name the active chain would get at the next backup; absent when it would not rotate. */
  wouldArchiveTo?: string;
  /** Archives the retention after that rotation would delete besides `wouldDelete`. */
  wouldDeleteAfterRotation: string[];
}

/**
 * A dry run of local retention and rotation for one domain: the same decisions applyRetention and rotateChain
 * take (decideRetention, needsRotation), read only, each announced as a `planned` chain event whose `step` says
 * what WOULD happen ("would delete <folder>", "would archive <domain> → <archive> at the next backup", …). Nothing
 * is renamed or deleted. Hold the chain lease of the domain around this call, so no rotation is half done.
 */
export async function planRetention(deps: RotationDeps, o: RetentionPlanOptions): Promise<RetentionPlan> {
  const say = (a: { step: string; folders?: string[]; reason: string }) => announce(deps, o, "retention", { type: "planned", domain: o.domain, plan: "dry-run", ...a });
  const now = await readRetentionDecision(deps, o);
  const plan: RetentionPlan = { domain: o.domain, wouldDelete: now.decision.delete.map((v) => v.name), wouldKeep: now.decision.keep.map((v) => v.name), wouldDeleteAfterRotation: [] };

  for (const { name, reason } of now.decision.delete) await say({ step: `would delete ${name}`, folders: [name], reason: `dry run, nothing deleted: ${reason}` });
  if (now.decision.delete.length === 0)
    await say({ step: "would delete nothing", reason: `dry run: retention keeps all ${now.decision.archives.length} archived chain(s) of ${o.domain}${keptText(now.decision.keep)}` });
  else if (now.decision.keep.length > 0) await say({ step: `would keep ${now.decision.keep.length} archive(s)`, folders: plan.wouldKeep, reason: `dry run${keptText(now.decision.keep)}` });

  const folder = await readChainFolder(chainFolderPath(deps.backupRoot, o.domain), o.domain, deps.chainFiles);
  const rotation = needsRotation(folder, o.maxBackupsPerChain);
  if (!rotation.rotate || folder.symlink) {
    const why = folder.symlink ? "the chain folder is a symbolic link, which is never followed (backups of it are refused)" : rotation.reason;
    await say({ step: `would keep ${o.domain} as the active chain at the next backup`, reason: `dry run: ${why}` });
    return plan;
  }
  const archive = chainArchiveName(o.domain, folder, new Set(now.names), deps.timeZone);
  plan.wouldArchiveTo = archive;
  await say({ step: `would archive ${o.domain} → ${archive} at the next backup`, folders: [archive], reason: `dry run, nothing archived: rotation: ${rotation.reason}; the next backup would start a new chain` });
  // The retention that follows that archive sees one archive more.
  const after = await readRetentionDecision(deps, o, now, { name: archive, from: o.domain });
  for (const { name, reason } of after.decision.delete) {
    if (plan.wouldDelete.includes(name)) continue;
    plan.wouldDeleteAfterRotation.push(name);
    await say({ step: `would delete ${name} after that archive`, folders: [name], reason: `dry run, nothing deleted: ${reason}` });
  }
  return plan;
}

/** " (kept: a — why; b — why)" for a reason. */
function keptText(keep: readonly { name: string; reason: string }[]): string {
  return keep.length > 0 ? ` (kept: ${keep.map((k) => `${k.name} — ${k.reason}`).join("; ")})` : "";
}

import { LeaseBusyError, type ChainLeases, type PublishChainEvent } from "@vmbs/bus";
import type { FileLister } from "@vmbs/chain";
import type { Config, EffectivePolicy } from "@vmbs/config";
import type { Logger } from "@vmbs/logger";
import type { Libvirt } from "@vmbs/virt";
import { applyRetention, type RetentionSummary } from "./apply-retention.js";
import { planRetention, type RetentionPlan } from "./plan-retention.js";
import { rotateChain, type RotationSummary } from "./rotate-chain.js";

export interface ChainUpkeepDeps {
  config: Pick<Config, "HOST_ID" | "LOCAL_BACKUP_PATH" | "TZ">;
  /** The domain's policy now: chain length and retention (VMBS_POLICY_FILE, else the environment). */
  policyOf(domain: string): Pick<EffectivePolicy, "maxBackupsPerChain" | "chainsToKeep" | "calendar">;
  libvirt: Libvirt;
  leases: ChainLeases;
  rootId: string;
  publish: PublishChainEvent;
  logger: Logger;
  /** Where chain folders are read (the local disk by default). */
  chainFiles?: FileLister;
}

/** The agent's rotation and retention of one domain's chains, with its configured bounds. */
export interface ChainUpkeep {
  /** Archives the chain when it is at its maximum length, or whatever its length with `force`. */
  rotate(domain: string, trigger: string, force: boolean, requestId?: string): Promise<RotationSummary>;
  /** Deletes the domain's archives beyond its count to keep and its calendar tiers. */
  retain(domain: string, trigger: string, requestId?: string): Promise<RetentionSummary>;
  /** A dry run of retain (and of the rotation at the next backup): announces what would happen, changes nothing. */
  planRetention(domain: string, trigger: string, requestId?: string): Promise<RetentionPlan>;
}

export function createChainUpkeep(deps: ChainUpkeepDeps): ChainUpkeep {
  const { config, libvirt, leases, rootId, logger } = deps;
  const rotationDeps = {
    backupRoot: config.LOCAL_BACKUP_PATH,
    host: config.HOST_ID,
    domainNames: async () => (await libvirt.listPersistentDomains()).map((d) => d.name),
    // An archive is deleted under its own folder's lease too: a holder means someone writes it as a chain.
    lockFolder: async (name: string) => {
      try {
        const lease = await leases.acquire(rootId, name, { op: "retention" });
        return () => lease.release();
      } catch (err) {
        if (err instanceof LeaseBusyError) return undefined;
        throw err;
      }
    },
    logger,
    timeZone: config.TZ,
    publish: deps.publish,
    chainFiles: deps.chainFiles,
  };
  const boundsOf = (domain: string) => {
    const p = deps.policyOf(domain);
    return { maxBackupsPerChain: p.maxBackupsPerChain, keep: p.chainsToKeep, calendar: p.calendar };
  };
  return {
    rotate: (domain, trigger, force, requestId) => rotateChain(rotationDeps, { domain, ...boundsOf(domain), force, trigger, requestId }),
    retain: (domain, trigger, requestId) => {
      const { keep, calendar } = boundsOf(domain);
      return applyRetention(rotationDeps, { domain, keep, calendar, trigger, requestId });
    },
    planRetention: (domain, trigger, requestId) => planRetention(rotationDeps, { domain, ...boundsOf(domain), trigger, requestId }),
  };
}

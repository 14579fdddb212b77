import type { Config } from "@vmbs/config";
import type { NatsConnection, PublishChainEvent } from "@vmbs/bus";
import type { Libvirt } from "@vmbs/virt";
import type { Logger } from "@vmbs/logger";
import type { FileLister } from "@vmbs/chain";
import { createBootTracker } from "./boot-id.js";
import { createChainCheck, type CheckChain } from "./check-chain.js";
import { createPlanExecutor } from "./execute-plan.js";
import { createChainObserver } from "./observe-chain.js";

export type ChainCheckConfig = Pick<
  Config,
  "HOST_ID" | "LOCAL_BACKUP_PATH" | "TZ" | "VM_ALLOW_BACKUP_CHAIN_FIX" | "VM_ALLOW_POWERCYCLE" | "VM_WAIT_TIME" | "CHECK_BACKUPS_INTEGRITY"
>;

export interface ChainCheckerDeps {
  config: ChainCheckConfig;
  nc: NatsConnection;
  libvirt: Libvirt;
  logger: Logger;
  /** The agent's chain event publisher (createChainEventPublisher). */
  publish: PublishChainEvent;
  /** Runs a full backup into a fresh chain folder (cancelled through `signal`); true when it completed. */
  runFull: (domain: string, signal?: AbortSignal) => Promise<boolean>;
  /** Test hook: where the boot id is read from. */
  bootIdPath?: string;
  /** Where chain folders are observed: the local disk by default (a test counts the reads). */
  chainFiles?: FileLister;
}

export interface ChainChecker {
  check: CheckChain;
  publish: PublishChainEvent;
  /** The host restarted since the last agent recorded its boot: every startup check is strict. */
  bootChanged: boolean;
  /** Records this boot as seen; called once the startup checks are through. */
  recordBoot(): Promise<void>;
}

/** Wires observe → plan → execute for this host's agent. */
export async function createChainChecker(deps: ChainCheckerDeps): Promise<ChainChecker> {
  const { config, libvirt } = deps;
  const logger = deps.logger.child({ component: "chain-check" });
  const { publish } = deps;
  const boot = await createBootTracker(deps.nc, config.HOST_ID, deps.bootIdPath);
  // Strict for the whole life of the agent until the boot is recorded, then only per failed backup.
  let bootChanged = await boot.changed();
  if (bootChanged) logger.warn("the host restarted since the agent last ran: chains are checked strictly");
  const observe = createChainObserver({ libvirt, backupRoot: config.LOCAL_BACKUP_PATH, allowChainFix: config.VM_ALLOW_BACKUP_CHAIN_FIX, logger, chainFiles: deps.chainFiles });
  const execute = createPlanExecutor({
    libvirt,
    backupRoot: config.LOCAL_BACKUP_PATH,
    timeZone: config.TZ,
    allowPowercycle: config.VM_ALLOW_POWERCYCLE,
    waitTimeSec: config.VM_WAIT_TIME,
    publish,
    logger,
    runFull: deps.runFull,
  });
  const check = createChainCheck({
    observe,
    execute,
    publish,
    logger,
    checkIntegrity: config.CHECK_BACKUPS_INTEGRITY,
    bootChanged: () => bootChanged,
    startDomain: (domain) => libvirt.start(domain),
  });
  return {
    check,
    publish,
    get bootChanged() {
      return bootChanged;
    },
    async recordBoot() {
      await boot.record();
      bootChanged = false;
    },
  };
}

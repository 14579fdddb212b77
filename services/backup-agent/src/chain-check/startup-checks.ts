import { waitForDomainState, type Libvirt } from "@vmbs/virt";
import type { Logger } from "@vmbs/logger";
import type { ChainGuard } from "@vmbs/bus";
import type { ChainChecker } from "./chain-checker.js";

export interface StartupChecksDeps {
  checker: ChainChecker;
  libvirt: Libvirt;
  runExclusive: ChainGuard;
  logger: Logger;
  /** VM_AUTOSTART_LIST. */
  autostart: readonly string[];
  /** Stops the pass between domains (the running check's backup is cancelled through the same signal). */
  signal?: AbortSignal;
  /** How long a started domain gets to reach "running". Default 10 s. */
  startTimeoutMs?: number;
}


/**
 * The agent's start-up pass (seed-behaviour.md §2.10, issue 3 item 7): check every scheduled domain (strictly
 * after a host restart), record the boot, then start the VM_AUTOSTART_LIST domains and confirm they run.
 */
export async function runStartupChecks(deps: StartupChecksDeps, domains: readonly string[]): Promise<void> {
  const { checker, logger } = deps;
  for (const domain of domains) {
    if (deps.signal?.aborted) return;
    await deps
      .runExclusive(domain, (leaseLost) => checker.check({ domain, trigger: "startup", integrity: true, newChain: "run", signal: leaseLost }))
      .catch((err: unknown) => logger.error({ err, domain }, "startup chain check crashed"));
  }
  await checker.recordBoot().catch((err: unknown) => logger.warn({ err }, "could not record the boot id"));
  for (const domain of deps.autostart) await autostart(deps, domain);
}

async function autostart(deps: StartupChecksDeps, domain: string): Promise<void> {
  const { libvirt, checker, logger } = deps;
  const attention = (reason: string) =>
    checker.publish({ type: "attention", domain, trigger: "autostart", reason }).catch((err: unknown) => logger.warn({ err }, "could not publish"));
  try {
    const state = await libvirt.domainState(domain);
    if (state === "running") return;
    await libvirt.start(domain);
    if (!(await waitForDomainState(libvirt, domain, "running", { timeoutMs: deps.startTimeoutMs ?? 10_000 })))
      return void (await attention(`${domain} (VM_AUTOSTART_LIST) was started but is not running`));
    logger.info({ domain }, "autostarted");
  } catch (err) {
    logger.error({ err, domain }, "autostart failed");
    await attention(`${domain} (VM_AUTOSTART_LIST) could not be started: ${(err as Error).message}`);
  }
}

import { setTimeout as sleep } from "node:timers/promises";
import type { DomainState, Libvirt } from "./libvirt.js";

export interface WaitForStateOptions {
  timeoutMs: number;
  /** Poll period. Default 500 ms. */
  intervalMs?: number;
  /** Keep polling through a failed state query (e.g. while the domain is shutting down) instead of throwing. */
  tolerateErrors?: boolean;
}

/** Polls a domain's state until it is `wanted`; false when `timeoutMs` passed first. */
export async function waitForDomainState(libvirt: Libvirt, domain: string, wanted: DomainState, o: WaitForStateOptions): Promise<boolean> {
  const until = Date.now() + o.timeoutMs;
  for (;;) {
    const state = await (o.tolerateErrors ? libvirt.domainState(domain).catch(() => "other" as const) : libvirt.domainState(domain));
    if (state === wanted) return true;
    if (Date.now() >= until) return false;
    await sleep(o.intervalMs ?? 500);
  }
}

import { setTimeout as sleep } from "node:timers/promises";
import type { DomainState, Virsh } from "./virsh.js";

export interface WaitForStateOptions {
  timeoutMs: number;
  /** Poll period. Default 500 ms. */
  intervalMs?: number;
  /** Keep polling through a failed `virsh domstate` (e.g. while the domain is shutting down) instead of throwing. */
  tolerateErrors?: boolean;
}

/** Polls a domain's state until it is `wanted`; false when `timeoutMs` passed first. */
export async function waitForDomainState(virsh: Virsh, domain: string, wanted: DomainState, o: WaitForStateOptions): Promise<boolean> {
  const until = Date.now() + o.timeoutMs;
  for (;;) {
    const state = await (o.tolerateErrors ? virsh.domainState(domain).catch(() => "other" as const) : virsh.domainState(domain));
    if (state === wanted) return true;
    if (Date.now() >= until) return false;
    await sleep(o.intervalMs ?? 500);
  }
}

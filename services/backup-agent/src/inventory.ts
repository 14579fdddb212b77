import { hostname } from "node:os";
import type { HostInventory } from "@vmbs/contracts";
import type { KV } from "@vmbs/bus";
import type { Libvirt } from "@vmbs/virt";
import type { Logger } from "@vmbs/logger";
import type { DomainSelection } from "@vmbs/config";

export interface InventoryDeps {
  host: string;
  libvirt: Libvirt;
  hosts: KV;
  selection: DomainSelection;
  agentVersion: string;
  /** What the agent drives (virtnbdbackup, libvirt, QEMU), read once at start. */
  versions?: Record<string, string>;
  logger: Logger;
  /** Heartbeat period; must be well under the bucket TTL. Default 30 s. */
  intervalMs?: number;
}

/**
 * Keeps this host's entry in the hosts bucket: its persistent domains (re-read at every beat, so domains
 * defined after start-up are seen) and which of them are scheduled.
 */
export function createInventory(deps: InventoryDeps) {
  let timer: NodeJS.Timeout | undefined;
  let last: HostInventory | undefined;

  async function refresh(): Promise<HostInventory> {
    const domains = await deps.libvirt.listPersistentDomains();
    last = {
      host: deps.host,
      hostname: hostname(),
      agentVersion: deps.agentVersion,
      heartbeatAt: new Date().toISOString(),
      ...(deps.versions ? { versions: deps.versions } : {}),
      domains: domains.map((d) => ({ name: d.name, state: d.state, scheduled: deps.selection.scheduled(d.name) })),
    };
    await deps.hosts.put(deps.host, JSON.stringify(last));
    return last;
  }

  return {
    refresh,
    /** The last inventory written, if any. */
    current: (): HostInventory | undefined => last,
    async start(): Promise<HostInventory> {
      const first = await refresh();
      timer = setInterval(() => {
        refresh().catch((err: unknown) => deps.logger.warn({ err }, "inventory heartbeat failed"));
      }, deps.intervalMs ?? 30_000);
      return first;
    },
    stop(): void {
      clearInterval(timer);
    },
  };
}

import { rm } from "node:fs/promises";
import type { Logger } from "@vmbs/logger";
import { exportPid, serveChainExport, type Libvirt } from "@vmbs/virt";
import type { InstantLeases } from "./instant-leases.js";
import type { InstantRecord, InstantRecords } from "./instant-record.js";
import { planInstantRecovery } from "./instant-plan.js";
import { disksOnOverlays, dropInstantServing, removeInstantVm, settleDefinition } from "./instant-restore.js";

/*
 * At the restore service's start: each recorded instant VM is served again (its nbdkit exports restarted when a
 * restart ended them) and its chain lease taken again; what a restart interrupted is finished or undone. Whatever
 * needs a person is said in an `attention` event naming the instant VM.
 */

export interface InstantRecoveryDeps {
  libvirt: Libvirt;
  records: InstantRecords;
  leases: InstantLeases;
  logger: Logger;
  /** An `attention` event about the instant VM `name` of `source` (`file` when its record is unreadable). */
  attention(about: { name: string; source?: string }, reason: string): Promise<void>;
}

export async function recoverInstantVms(deps: InstantRecoveryDeps): Promise<void> {
  const { records, unreadable } = await deps.records.list();
  for (const file of unreadable) await deps.attention({ name: file }, `the instant VM record ${file} cannot be read; nothing was done for it (remove it once its VM is dealt with)`);
  for (const record of records) {
    try {
      const said = await recoverOne(deps, record);
      if (said) await deps.attention({ name: record.name, source: record.source }, said);
      else deps.logger.info({ domain: record.name }, "instant VM still served");
    } catch (err) {
      await deps.attention({ name: record.name, source: record.source }, `instant VM ${record.name} (from ${record.source} at ${record.checkpoint}) could not be served again: ${(err as Error).message}; abandon it (vmbs instant-restore --abandon) or fix the cause and restart the restore service`);
    }
  }
}

/** Recovers one instant VM (facts gathered, planInstantRecovery decides, done here); returns what to tell. */
async function recoverOne(deps: InstantRecoveryDeps, record: InstantRecord): Promise<string | undefined> {
  const what = `instant VM ${record.name} (from ${record.source} at ${record.checkpoint})`;
  const info = record.phase === "starting" ? undefined : await deps.libvirt.domainInfo(record.name);
  const running = info?.state === "running" || info?.state === "paused";
  const onOverlays = info ? (await disksOnOverlays(deps.libvirt, record, running)).map((d) => d.target) : [];
  const served: string[] = [];
  for (const d of record.disks) if ((await exportPid(d)) !== undefined) served.push(d.target);
  const plan = planInstantRecovery(what, {
    phase: record.phase, defined: info !== undefined, running, ...(info ? { state: info.state } : {}), onOverlays, served, disks: record.disks.map((d) => d.target),
  });
  const disk = (target: string) => record.disks.find((d) => d.target === target)!;
  switch (plan.kind) {
    case "remove": {
      const removed = await removeInstantVm(deps, record);
      await deps.records.remove(record.name);
      return `${plan.say} (${removed.join(", ") || "nothing was left"})`;
    }
    case "complete-finish":
      await settleDefinition(deps.libvirt, record, running);
      await dropInstantServing({ ...deps, progress: async () => undefined }, record);
      return plan.say;
    case "resume":
      if (!deps.leases.holds(record.name)) deps.leases.keep(record.name, record.source);
      for (const target of plan.dropCopies) {
        if (running && (await deps.libvirt.blockJob(record.name, target))) await deps.libvirt.blockJobAbort(record.name, target, false);
        await rm(disk(target).image, { force: true });
      }
      if (plan.backToServing) {
        record.phase = "serving";
        await deps.records.save(record);
      }
      for (const target of plan.serve) await serveChainExport(disk(target));
      return plan.say;
  }
}

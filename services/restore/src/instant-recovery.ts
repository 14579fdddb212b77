import { rm } from "node:fs/promises";
import type { Logger } from "@vmbs/logger";
import { exportPid, serveChainExport, type Libvirt } from "@vmbs/virt";
import type { InstantLeases } from "./instant-leases.js";
import type { InstantRecord, InstantRecords } from "./instant-record.js";
import { disksOnOverlays, dropInstantServing, removeInstantVm } from "./instant-restore.js";

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

/** Recovers one instant VM; returns what a person should know, or undefined when nothing had to be done. */
async function recoverOne(deps: InstantRecoveryDeps, record: InstantRecord): Promise<string | undefined> {
  const what = `instant VM ${record.name} (from ${record.source} at ${record.checkpoint})`;
  if (record.phase === "starting") {
    const removed = await removeInstantVm(deps, record);
    await deps.records.remove(record.name);
    return `the start of ${what} was interrupted before it ran; what it had made was removed (${removed.join(", ") || "nothing left"})`;
  }
  const info = await deps.libvirt.domainInfo(record.name);
  if (!info) {
    const removed = await removeInstantVm(deps, record);
    await deps.records.remove(record.name);
    return `${what} is no longer defined (undefined outside vmbs); its exports and overlays were removed (${removed.join(", ")})`;
  }
  const notes: string[] = [];
  if (!deps.leases.holds(record.name)) deps.leases.keep(record.name, record.source);
  const running = info.state === "running" || info.state === "paused";
  if (record.phase === "finishing") {
    // A disk already pivoted runs from its image now: only the others' partial copies go.
    const onOverlays = await disksOnOverlays(deps.libvirt, record, running);
    if (onOverlays.length === 0) {
      await dropInstantServing({ ...deps, progress: async () => undefined }, record);
      return `the finish of ${what} was interrupted after every disk was moved onto its image; it was completed (exports stopped, overlays removed)`;
    }
    for (const d of onOverlays) {
      if (running && (await deps.libvirt.blockJob(record.name, d.target))) await deps.libvirt.blockJobAbort(record.name, d.target, false);
      await rm(d.image, { force: true });
    }
    if (onOverlays.length === record.disks.length) {
      record.phase = "serving";
      await deps.records.save(record);
    }
    notes.push("its finish was interrupted and its partial copies removed; run vmbs instant-restore --finish again");
  }
  const served: string[] = [];
  const stillServed = await disksOnOverlays(deps.libvirt, record, running);
  for (const d of stillServed) {
    if ((await exportPid(d)) !== undefined) continue;
    await serveChainExport(d);
    served.push(d.target);
  }
  if (served.length > 0) notes.unshift(`its exports of ${served.join(", ")} were started again`);
  // QEMU does not reconnect to an export that went away under it.
  if (served.length > 0 && running) notes.push("it ran while they were down and may see I/O errors on those disks until it is restarted (virsh destroy, virsh start)");
  if (!running) notes.push(`it is ${info.state}: start it (virsh start) and finish it, or abandon it`);
  return notes.length > 0 ? `${what}: ${notes.join("; ")}` : undefined;
}

import type { BackupEvent, ChainEvent, ContractEvent, DrillEvent, MirrorEvent } from "@vmbs/contracts";
import { domainRecordOf, RUNS_KEPT, type DomainRecord, type FleetRecords } from "./fleet-records.js";

/** An event as the contract of its subject accepted it, with where it sits in the stream. */
export interface SeenEvent {
  /** `backup`, `chain`, `mirror`, … (the subject's service token). */
  service: string;
  event: ContractEvent;
  /** Stream sequence in VMBS_EVT. */
  seq: number;
}

/** The checkpoint's number: `virtnbdbackup.3` → 3. */
function checkpointIndex(checkpoint: string): number | undefined {
  const m = /\.(\d+)$/.exec(checkpoint);
  return m ? Number(m[1]) : undefined;
}

/** Adds a run to a domain's history, keeping the newest RUNS_KEPT. */
function addRun(record: DomainRecord, run: DomainRecord["runs"][number]): void {
  const key = `${run.level ?? "none"}/${run.outcome}`;
  record.runCounts[key] = (record.runCounts[key] ?? 0) + 1;
  record.bytesTotal += run.bytesWritten;
  record.runs.push(run);
  if (record.runs.length > RUNS_KEPT) record.runs.splice(0, record.runs.length - RUNS_KEPT);
}

function foldBackup(record: DomainRecord, e: BackupEvent): boolean {
  if (e.type === "completed") {
    record.lastBackup = { at: e.at, level: e.level, checkpoint: e.checkpoint, bytesWritten: e.bytesWritten, durationMs: e.durationMs };
    record.chainLength = (checkpointIndex(e.checkpoint) ?? record.chainLength) + 1;
    if (e.archivedTo && !record.archives.includes(e.archivedTo)) record.archives.push(e.archivedTo);
    record.chainAttention = null;
    addRun(record, { at: e.at, level: e.level, outcome: "completed", bytesWritten: e.bytesWritten, durationMs: e.durationMs });
    return true;
  }
  // A command refused in a flood ran nothing: neither a run nor a failure of the domain's backups.
  if (e.type === "failed" && !e.refused) {
    record.lastFailure = { at: e.at, reason: e.reason };
    addRun(record, { at: e.at, level: e.level ?? null, outcome: "failed", bytesWritten: e.bytesWritten, durationMs: e.durationMs });
    return true;
  }
  return false;
}

function foldChain(record: DomainRecord, e: ChainEvent): boolean {
  const folders = e.folders ?? [];
  const ownArchives = folders.filter((f) => f.startsWith(`${record.domain}.`));
  switch (e.type) {
    case "archived":
      // The active chain became an archive: the next backup starts a new one.
      record.chainLength = 0;
      for (const f of ownArchives) if (!record.archives.includes(f)) record.archives.push(f);
      return true;
    case "deleted":
    case "pruned":
      if (folders.includes(record.domain)) record.chainLength = 0;
      record.archives = record.archives.filter((a) => !folders.includes(a));
      return true;
    case "attention":
    case "failed":
      record.chainAttention = { at: e.at, reason: e.reason };
      return true;
    // "checked" and a dry run's "planned" change no chain.
    default:
      return false;
  }
}

function foldMirror(record: DomainRecord, e: MirrorEvent): boolean {
  // A dry run's answer says what a sync would do; the copy is as it was.
  if (e.type === "planned") return false;
  const lastSyncAt = e.type === "completed" ? e.at : (record.mirror?.lastSyncAt ?? null);
  const state = e.type === "started" ? "syncing" : e.type === "completed" ? "in-sync" : "failed";
  record.mirror = { state, at: e.at, lastSyncAt, target: e.target, ...(e.reason ? { reason: e.reason } : {}) };
  return true;
}

/** The domains a drill event speaks of, each with its verdict. */
function drillVerdicts(e: DrillEvent): Map<string, { ok: boolean; sets: number; reason?: string }> {
  const verdicts = new Map<string, { ok: boolean; sets: number; reason?: string }>();
  for (const c of e.chains ?? []) {
    const v = verdicts.get(c.domain) ?? { ok: true, sets: 0 };
    v.sets++;
    if (!c.ok) {
      v.ok = false;
      v.reason ??= c.faults[0] ? `${c.set}: ${c.faults[0].reason}` : `${c.set} failed`;
    }
    verdicts.set(c.domain, v);
  }
  // A drill refused before it looked at any chain still failed for the domain it named.
  if (e.type === "failed" && e.domain && !verdicts.has(e.domain)) verdicts.set(e.domain, { ok: false, sets: 0, reason: e.reason ?? "the drill failed" });
  return verdicts;
}

/**
 * Folds one event into the records of the domains it speaks of. Returns the records it changed, to be stored;
 * an event already folded in (its sequence not newer than a record's) changes nothing.
 */
export function foldEvent(fleet: FleetRecords, seen: SeenEvent): DomainRecord[] {
  const { service, event, seq } = seen;
  const host = event.host;
  const apply = (domain: string | undefined, change: (r: DomainRecord) => boolean): DomainRecord[] => {
    if (!domain) return [];
    const record = domainRecordOf(fleet, host, domain);
    if (seq <= record.seq || !change(record)) return [];
    record.seq = seq;
    return [record];
  };
  switch (service) {
    case "backup": {
      const e = event as unknown as BackupEvent;
      return apply(e.domain, (r) => foldBackup(r, e));
    }
    case "chain": {
      const e = event as unknown as ChainEvent;
      return apply(e.domain, (r) => foldChain(r, e));
    }
    case "mirror": {
      const e = event as unknown as MirrorEvent;
      return apply(e.domain, (r) => foldMirror(r, e));
    }
    case "drill": {
      const e = event as unknown as DrillEvent;
      if (e.type === "started") return [];
      return [...drillVerdicts(e)].flatMap(([domain, v]) =>
        apply(domain, (r) => {
          r.lastDrill = { at: e.at, ok: v.ok, sets: v.sets, ...(v.reason ? { reason: v.reason } : {}) };
          return true;
        }),
      );
    }
    default:
      return [];
  }
}

import type { Disposition, JsMsg } from "@vmbs/bus";
import { backupCompletedSchema, parsePayload } from "@vmbs/contracts";
import type { MirrorSync } from "./sync-chains.js";

export interface BackupCompletedHandlerDeps {
  host: string;
  /** RSYNC_SCHEDULE: when set, the mirror syncs only at that schedule, not after each backup. */
  schedule: string | undefined;
  syncDomain: MirrorSync["syncDomain"];
}

/** A completed backup of this host (the mirror's events durable): syncs its chain to every target. */
export function createBackupCompletedHandler(deps: BackupCompletedHandlerDeps): (msg: JsMsg) => Promise<Disposition> {
  const { host } = deps;
  const syncedRuns = createRecentSet(1_000);
  return async (msg) => {
    // With RSYNC_SCHEDULE set the seed mirrors only at that schedule.
    if (deps.schedule) return "ack";
    const parsed = parsePayload(backupCompletedSchema, msg.data);
    if (!parsed.ok || parsed.value.host !== host) return "term";
    // Commands coalesced into one backup each announce its `completed` (same runId): one sync serves them all.
    if (syncedRuns.has(parsed.value.runId)) return "ack";
    syncedRuns.add(parsed.value.runId);
    await deps.syncDomain(parsed.value.domain ?? parsed.value.folder, "backup", parsed.value.requestId);
    return "ack";
  };
}

/** A set that remembers only its `size` newest members (insertion order). */
function createRecentSet(size: number): { has(key: string): boolean; add(key: string): void } {
  const members = new Set<string>();
  return {
    has: (key) => members.has(key),
    add(key) {
      members.add(key);
      if (members.size > size) members.delete(members.values().next().value!);
    },
  };
}

import { z } from "zod";
import { isHostToken } from "./subjects.js";

/**
 * The marker file in LOCAL_BACKUP_PATH that names the backup root. Its id scopes the chain leases
 * (`<rootId>.<sha256(domain)>`), so every agent writing into one root — on any host — shares one lock per
 * chain folder. The name is reserved: no domain may use it as its chain folder.
 */
export const backupRootMarker = ".vm-babysitter-root";

/**
 * The hidden folder in LOCAL_BACKUP_PATH where restore drills restore into (unless DRILL_SCRATCH_PATH says
 * otherwise), one sub-folder per run, removed after it. Reserved like the marker: never a chain folder.
 */
export const drillScratchFolder = ".vmbs-drill";

/** Content of {@link backupRootMarker}: `{"id":"<host token of the first agent that used the root>"}`. */
export const backupRootMarkerSchema = z
  .object({
    id: z.string().refine(isHostToken, { error: "id must be a host token (1-64 of [A-Za-z0-9_-])" }),
  })
  .strict();
export type BackupRootMarker = z.infer<typeof backupRootMarkerSchema>;

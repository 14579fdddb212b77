export type { ChainFile, ChainFolder } from "./chain-folder.js";
export { readChainFolder } from "./chain-folder.js";
export {
  FIRST_CHECKPOINT,
  dataFiles,
  partialFiles,
  fullDataFiles,
  hasChain,
  isEffectivelyEmpty,
  isCopyBackup,
  dataFilesOfCheckpoint,
  filesOfCheckpoint,
  oldestMtime,
  isToolFile,
  foreignFiles,
} from "./chain-files.js";
export { removeToolFiles, setFolderAside, NotAChainFolderError, type RemovedFiles } from "./remove-tool-files.js";
export type { ParsedArchiveName } from "./archive-name.js";
export { archiveFolderName, parseArchiveFolderName, uniqueArchiveName } from "./archive-name.js";
export type { ChainPoints, CalendarPolicy } from "./retention.js";
export { selectArchivesToDelete, selectCalendarRetention } from "./retention.js";
export type { CheckpointAudit, ChainAudit } from "./chain-audit.js";
export { auditChain } from "./chain-audit.js";
export type { DomainState, StaleTmp, ChainSnapshot, ChainStep, PlanKind, ChainPlan } from "./chain-snapshot.js";
export { planChain } from "./plan-chain.js";

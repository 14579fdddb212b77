/**
 * Chain logic shared by every service: reading a chain folder (locally or through a FileLister), classifying its
 * files, the chain-state planner, archive names, retention, chain points, the integrity check.
 *
 * Whether a chain ends and its folder is archived is decided in ONE place: chain-end.ts (a requested full,
 * rotation, the chain and data checks, a full backup disk, an in-place restore, the mirror copy and its retention).
 */
export type { ChainFile, ChainFolder, FileStamps } from "./chain-folder.js";
export { readChainFolder, isActiveChainFolder, fileStampsOf } from "./chain-folder.js";
export { localFileLister, localFileRemover, type FileRemover, type FileLister, type FileFacts, type FileKind, type ListedEntry } from "./file-lister.js";
export {
  FIRST_CHECKPOINT,
  dataFiles,
  partialFiles,
  hasChain,
  isEffectivelyEmpty,
  isCopyBackup,
  dataFilesOfCheckpoint,
  checksummedFilesOfCheckpoint,
  tpmStateCopyName,
  filesOfCheckpoint,
  oldestMtime,
  isToolFile,
  isToolFolder,
  foreignFiles,
} from "./chain-files.js";
export {
  checksumFileOf,
  formatChecksums,
  parseChecksums,
  sha256File,
  recordChecksums,
  judgeChecksums,
  verifyChecksums,
  type ChecksumEntry,
  type ParsedChecksums,
  type ChecksumFault,
  type ChecksumVerdict,
} from "./checksums.js";
export { followDataFiles, type DataFileHasher, type StreamedDigest } from "./streamed-checksums.js";
export { removeToolFiles, setFolderAside, NotAChainFolderError, type RemovedFiles } from "./remove-tool-files.js";
export type { ParsedArchiveName } from "./archive-name.js";
export { archiveFolderName, parseArchiveFolderName, archiveDomainOf, uniqueArchiveName } from "./archive-name.js";
export type { ChainPoints, CalendarPolicy } from "./retention.js";
export { selectArchivesToDelete, selectCalendarRetention } from "./retention.js";
export type { CheckpointAudit, ChainAudit } from "./chain-audit.js";
export { auditChain } from "./chain-audit.js";
export type { DomainState, StaleTmp, ChainSnapshot, ChainStep, PlanKind, ChainPlan } from "./chain-snapshot.js";
export { planChain } from "./plan-chain.js";
export {
  archiveBeforeBackup,
  hasContinuableChain,
  needsRotation,
  folderAtChainEnd,
  endChainOnDamagedData,
  keepChainOnFullDisk,
  chainEndAfterRestore,
  mirrorCopyFate,
  mirrorArchivesToDelete,
  mirrorKeepAfterArchive,
  type RotationDecision,
  type FolderFate,
  type RestoreChainEnd,
  type MirrorCopyFate,
} from "./chain-end.js";
export { chainFolderPath, UnsafeDomainPathError } from "./chain-paths.js";
export { backupRootId, BackupRootMarkerError } from "./backup-root-id.js";
export { archiveChainFolder, chainArchiveName } from "./archive-chain.js";
export {
  decideRetention,
  calendarPolicyOf,
  type RetentionInput,
  type RetentionVerdict,
  type RetentionDecision,
} from "./decide-retention.js";
export { readChainPoints } from "./chain-points.js";
export { checkChainIntegrity, type IntegrityFault } from "./check-integrity.js";
export { checkStreamFile, type StreamCheck } from "./stream-check.js";

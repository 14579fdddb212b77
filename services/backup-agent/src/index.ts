export { startBackupAgent, BackupRootError, type BackupAgent, type BackupAgentDeps } from "./backup-agent.js";
export { planBackup, type BackupPlan, type BackupObservation } from "./plan-backup.js";
export { chainFolderPath, UnsafeDomainPathError } from "./chain-paths.js";

export { startBackupAgent, type BackupAgentDeps, type BackupAgentHandle } from "./backup-agent.js";
export { assertBackupRoot, BackupRootError, type BackupRootProblem } from "./backup-root.js";
export { planBackup, type BackupPlan, type BackupObservation } from "./plan-backup.js";
export { createChainChecker, type ChainChecker, type ChainCheckerDeps } from "./chain-check/chain-checker.js";
export type { CheckRequest, CheckSummary } from "./chain-check/check-chain.js";

export { startRestoreService, type RestoreServiceDeps, type RestoreServiceHandle } from "./restore-service.js";

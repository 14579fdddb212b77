export { startRestoreService, type RestoreService, type RestoreServiceDeps } from "./restore-service.js";

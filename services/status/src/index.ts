export { startStatusService, type StatusService, type StatusServiceDeps } from "./status-service.js";
export { createFleetPolicy, describeAge, type FleetPolicy } from "./fleet-policy.js";

export * from "./subjects.js";
export * from "./domain-name.js";
export * from "./backup.js";
export * from "./host-inventory.js";
export * from "./parse-payload.js";
export * from "./chain.js";
export * from "./roles.js";
export * from "./backup-root.js";

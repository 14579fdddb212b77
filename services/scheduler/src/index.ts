export { createScheduler, type SchedulerDeps, type SlotResult } from "./scheduler.js";
export { slotMessageId } from "./slot-message-id.js";

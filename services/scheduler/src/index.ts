export { startScheduler, type SchedulerDeps, type SchedulerHandle } from "./scheduler.js";
export { createSlotPublisher, type SlotPublisher, type SlotPublisherDeps, type SlotResult } from "./slot-publisher.js";
export { slotMessageId } from "./slot-message-id.js";

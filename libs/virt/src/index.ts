export { createVirsh, type Virsh, type DomainState, type DomainSummary, type DomainInfo } from "./virsh.js";
export { detectEngine, filterExtraArgs, type EngineCapabilities, type ExtraArgsResult } from "./engine-capabilities.js";
export {
  runEngineBackup,
  parseEngineLine,
  type EngineRunOptions,
  type EngineRunResult,
  type EngineLogLine,
} from "./run-backup.js";
export { VirshError, EngineUnavailableError } from "./virt-errors.js";
export { parseDiskImages } from "./virsh.js";
export { imageBitmaps, removeImageBitmap, parseImageBitmaps, QemuImgError, type ImageBitmap } from "./qemu-img.js";
export { liveBitmaps, removeLiveBitmap, parseLiveBitmaps, type LiveBitmap } from "./live-bitmaps.js";
export { waitForDomainState, type WaitForStateOptions } from "./wait-for-state.js";

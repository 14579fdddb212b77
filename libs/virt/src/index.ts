export { createLibvirt, type BlockJob, type Libvirt, type DomainState, type DomainSummary, type DomainInfo } from "./libvirt.js";
export { DEFAULT_LIBVIRT_TIMEOUT_MS, callTimeoutMs, type LibvirtBridgeOptions } from "./libvirt-bridge.js";
export { detectEngine, filterExtraArgs, type EngineCapabilities, type ExtraArgsResult } from "./engine-capabilities.js";
export {
  runEngineBackup,
  parseEngineLine,
  engineBytesToCopy,
  type EngineRunOptions,
  type EngineRunResult,
  type EngineLogLine,
} from "./run-backup.js";
export { LibvirtError, LibvirtTimeoutError, EngineUnavailableError, VIR_ERR_NO_DOMAIN, isDomainGone } from "./virt-errors.js";
export { convertImage, convertProgress, imageBitmaps, imageFormat, removeImageBitmap, parseImageBitmaps, QemuImgError, checkImage, judgeImageCheck, imageVirtualSize, parseVirtualSize, type ImageBitmap, type ImageCheck } from "./qemu-img.js";
export { liveBitmaps, removeLiveBitmap, parseLiveBitmaps, type LiveBitmap } from "./live-bitmaps.js";
export { waitForDomainState, type WaitForStateOptions } from "./wait-for-state.js";
export { runEngineRestore, RestoreError, type RestoreRunOptions, type RestoreRunResult, type RestoreFailure } from "./run-restore.js";
export { SWTPM_STATE_ROOT, TPM2_STATE_FILE, tpm2StatePath } from "./tpm-state.js";
export { serveChainExport, stopChainExport, exportPid, exportReadBytes, ChainExportError, type ChainExport } from "./chain-export.js";

export { createLogger, createProcessLogger, type Logger, type LoggerOptions, type ProcessLogger } from "./create-logger.js";
export { parseRotationSettings, rotateLogFile, type RotationSettings } from "./log-rotation.js";

export { createLogger, createProcessLogger, type Logger, type LoggerOptions, type ProcessLogger } from "./create-logger.js";
export { parseRotationSettings, rotateLogFile, type RotationSettings } from "./log-rotation.js";
export { redactUrl } from "./redact-url.js";

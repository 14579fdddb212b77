import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import pino, { type Logger, type LevelWithSilent } from "pino";
import { redactUrl } from "./redact-url.js";

export type { Logger } from "pino";

export interface LoggerOptions {
  /** Process name in every line, e.g. "vmbs". */
  name: string;
  /** Default "info". */
  level?: LevelWithSilent;
  /** Also append every line to this file (the seed's LOGFILE_PATH); its folder is created. Default: stdout only. */
  file?: string;
  /** Where stdout lines go; tests pass a sink. Default process.stdout. */
  stream?: NodeJS.WritableStream;
}

/** The logger of a process plus a way to reopen its log file after the file was rotated. */
export interface ProcessLogger {
  logger: Logger;
  /** Reopens `file` (after it was renamed by rotation); a no-op without a file. */
  reopenFile(): void;
}

/** Keys whose values never reach a log line. */
const secretKeys = ["password", "pass", "privateKey", "passphrase", "token", "seed", "NATS_PASSWORD", "NATS_TOKEN"];
/** Keys holding URLs: logged with their user part (credentials) hidden. */
const urlKeys = ["url", "NATS_URL"];
const redactedPaths = [...secretKeys, ...urlKeys].flatMap((k) => [k, `*.${k}`]);
const censor = (value: unknown, path: string[]): unknown =>
  urlKeys.includes(path[path.length - 1]!) && typeof value === "string" ? redactUrl(value) : "[redacted]";

/**
 * The one pino logger of a process. Services take `logger.child({ service })`, and a child per command
 * (`{ runId, domain }`). Logs are JSON on stdout, and appended to `file` when given.
 */
export function createProcessLogger(opts: LoggerOptions): ProcessLogger {
  const level = opts.level ?? "info";
  const base = { name: opts.name, level, redact: { paths: redactedPaths, censor } };
  const console = (opts.stream ?? process.stdout) as pino.DestinationStream;
  if (!opts.file) return { logger: pino(base, console), reopenFile: () => undefined };
  mkdirSync(dirname(opts.file), { recursive: true });
  const file = pino.destination({ dest: opts.file, append: true, mkdir: true, sync: true });
  const logger = pino(base, pino.multistream([{ stream: console, level }, { stream: file, level }]));
  return { logger, reopenFile: () => file.reopen() };
}

/** A logger without file rotation, for tools and tests. */
export function createLogger(opts: LoggerOptions): Logger {
  return createProcessLogger(opts).logger;
}

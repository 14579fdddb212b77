import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import pino, { type Logger, type LevelWithSilent } from "pino";
import pinoPretty from "pino-pretty";
import { redactUrl } from "./redact-url.js";

export type { Logger } from "pino";

export interface LoggerOptions {
  /** Process name in every line, e.g. "vmbs". */
  name: string;
  /** Default "info". */
  level?: LevelWithSilent;
  /** Also append every line to this file (the seed's LOGFILE_PATH); its folder is created. Default: stdout only. */
  file?: string;
  /** Where console lines go; tests pass a sink. Default process.stdout. */
  stream?: NodeJS.WritableStream;
  /**
   * Console lines for a person (time, level, message, then the fields) rather than JSON. Default: when the console
   * stream is a terminal. The file gets JSON whatever this says.
   */
  pretty?: boolean;
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

/** Console lines a person reads: coloured (unless NO_COLOR), written synchronously like the JSON ones. */
function prettyStream(destination: NodeJS.WritableStream): pino.DestinationStream {
  return pinoPretty({ destination, sync: true, colorize: !process.env.NO_COLOR, translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l", ignore: "pid,hostname,name", singleLine: true });
}

/**
 * The one pino logger of a process. Services take `logger.child({ service })`, and a child per command
 * (`{ runId, domain }`). Logs go to stdout — JSON, or lines a person reads when it is a terminal — and are
 * appended as JSON to `file` when given.
 */
export function createProcessLogger(opts: LoggerOptions): ProcessLogger {
  const level = opts.level ?? "info";
  const base = { name: opts.name, level, redact: { paths: redactedPaths, censor } };
  const out = opts.stream ?? process.stdout;
  const pretty = opts.pretty ?? (out as { isTTY?: boolean }).isTTY === true;
  const console = pretty ? prettyStream(out) : (out as pino.DestinationStream);
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

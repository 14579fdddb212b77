import { Writable } from "node:stream";
import { createLogger, type Logger } from "@vmbs/logger";

/** The logger of a service run inside a test: silent, or debug on stderr when VMBS_TEST_LOG is set. */
export function testLogger(name: string): Logger {
  const verbose = Boolean(process.env.VMBS_TEST_LOG);
  return createLogger({ name, level: verbose ? "debug" : "silent", stream: verbose ? process.stderr : new Writable({ write: (_c, _e, cb) => cb() }) });
}

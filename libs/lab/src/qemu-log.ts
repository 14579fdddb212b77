import { constants } from "node:fs";
import { access, open, stat } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "./wait-for.js";

/** Where the local system qemu driver of libvirt writes each domain's QEMU stdout/stderr. */
const SYSTEM_QEMU_LOG_DIR = "/var/log/libvirt/qemu";

/**
 * Path of the log that receives a domain's QEMU stdout, or undefined when this process
 * cannot read it (session or remote URIs, not root). HMP `qemu-io` prints its results
 * there, not to the monitor, so this log is the only place that tells whether it worked.
 */
export async function domainLogPath(uri: string, domain: string): Promise<string | undefined> {
  if (!/^qemu:\/\/\/system(\?|$)/.test(uri)) return undefined;
  const path = join(SYSTEM_QEMU_LOG_DIR, `${domain}.log`);
  try {
    await access(path, constants.R_OK);
    return path;
  } catch {
    return undefined;
  }
}

/** Current size of a log, 0 if it does not exist yet. */
export async function logSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Text appended to a log since byte `from` (all of it if the log was rotated meanwhile). */
async function readLogFrom(path: string, from: number): Promise<string> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const start = size < from ? 0 : from;
    const buffer = Buffer.alloc(size - start);
    await file.read(buffer, 0, buffer.length, start);
    return buffer.toString("utf8");
  } finally {
    await file.close();
  }
}

/**
 * Waits until the log, read from byte `from`, shows `expected` (success) or an error
 * line (failure, thrown with the log text). virtlogd copies QEMU's output
 * asynchronously, hence the polling.
 * @param timeoutMs default 10000
 */
export async function confirmInLog(
  path: string,
  from: number,
  expected: string,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const text = await waitFor(
    async () => {
      const appended = await readLogFrom(path, from);
      return appended.includes(expected) || /error|failed|not found|invalid/i.test(appended) ? appended : undefined;
    },
    { timeoutMs, intervalMs: 20, what: `${JSON.stringify(expected)} in ${path}` },
  );
  if (!text.includes(expected)) throw new Error(`${what} failed: ${text.trim()}`);
}

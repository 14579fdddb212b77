import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { VmbsError } from "@vmbs/contracts";

/** `vmbs start` could not start its own redis-server (binary missing, folder unusable). */
export class LocalRedisServerError extends VmbsError {
  constructor(readonly dir: string, options: ErrorOptions) {
    super("unavailable", `could not start the local redis-server in ${dir}`, options);
  }
}

export interface RunningRedisServer {
  /** `unix:///…/redis.sock`, for REDIS_URL. */
  url: string;
  pid: number;
  /** Resolves when the server exits, for whatever reason. */
  exited: Promise<{ code: number | null; signal: string | null }>;
  stop(): Promise<void>;
}

/**
 * Starts redis-server for the notifier's queue when REDIS_URL is unset: a unix socket only (no TCP port), data
 * in `dir` with the append-only file on, so queued alerts survive a restart of Redis or of vmbs.
 */
export async function startRedisServer(dir: string, timeoutMs = 10_000): Promise<RunningRedisServer> {
  const socketPath = join(dir, "redis.sock");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A socket left by a killed run would look like a ready server.
  await rm(socketPath, { force: true });
  const args = ["--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700", "--dir", dir, "--appendonly", "yes", "--save", "", "--daemonize", "no"];
  const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  let tail = "";
  child.stderr.on("data", (c: Buffer) => (tail = (tail + c.toString("utf8")).slice(-2000)));
  let spawnError: Error | undefined;
  child.on("error", (err) => (spawnError = err));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(socketPath)) {
    if (spawnError || child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new LocalRedisServerError(dir, { cause: spawnError ?? new Error(tail.trim() || (child.exitCode !== null ? `exited with code ${child.exitCode}` : "no socket in time")) });
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `unix://${socketPath}`, pid: child.pid!, exited, stop };
}

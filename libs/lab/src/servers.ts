import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { waitFor } from "./wait-for.js";

/** A throwaway nats-server with JetStream; `stop()` also deletes its store. */
export interface TestNats {
  url: string;
  /** SIGKILLs the server (no clean shutdown, as a crash or OOM kill) and keeps its store; `start()` brings it back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port with the same store (after `kill`). */
  start(): Promise<void>;
  /** Pid of the running server (for SIGSTOP/SIGCONT). */
  pid(): number;
  stop(): Promise<void>;
}

/** A throwaway redis-server listening only on a unix socket; `stop()` also deletes its folder. */
export interface TestRedis {
  socketPath: string;
  stop(): Promise<void>;
}

/**
 * Starts a JetStream nats-server on a random 127.0.0.1 port with a fresh store directory; `configFile` e.g. the
 * authorization config of `createBusAuth` (libs/bus) for tests under least privilege.
 */
export async function startTestNats(opts: { configFile?: string } = {}): Promise<TestNats> {
  const storeDir = await mkdtemp(join(tmpdir(), "vmbs-nats-store-"));
  try {
    let server: RunningNatsServer | undefined = await startNatsServer({ storeDir, configFile: opts.configFile });
    const url = server.url;
    const port = Number(new URL(url).port);
    return {
      url,
      async kill() {
        if (!server) return;
        process.kill(server.pid, "SIGKILL");
        await server.stop();
        server = undefined;
      },
      async start() {
        // Clients reconnect to the same URL; the port was just freed, so it is still ours in practice.
        server ??= await startNatsServer({ storeDir, port });
      },
      pid() {
        if (!server) throw new Error("the nats-server is not running");
        return server.pid;
      },
      stop: once(async () => {
        await server?.stop();
        await rm(storeDir, { recursive: true, force: true });
      }),
    };
  } catch (err) {
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Starts redis-server with no TCP port, no persistence, and a unix socket in a fresh
 * directory; resolves once the socket exists.
 */
export async function startTestRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-redis-"));
  const socketPath = join(dir, "redis.sock");
  const args = ["--port", "0", "--unixsocket", socketPath, "--save", "", "--appendonly", "no", "--dir", dir];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let outputTail = "";
  const keepTail = (chunk: Buffer): void => {
    outputTail = (outputTail + chunk.toString("utf8")).slice(-4096);
  };
  child.stdout.on("data", keepTail);
  child.stderr.on("data", keepTail);
  // Either way the child is gone and no socket will come: stop polling and report why.
  let failure: Error | undefined;
  child.on("error", (err) => {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    failure ??= missing ? new Error("redis-server is not installed or not on PATH", { cause: err }) : err;
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  void exited.then(() => {
    failure ??= new Error(`redis-server exited early (code ${child.exitCode}): ${outputTail.trim() || "(no output)"}`);
  });

  const stop = once(async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  });

  try {
    await waitFor(() => failure !== undefined || existsSync(socketPath), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: `redis socket ${socketPath}`,
    });
    if (failure) throw failure;
  } catch (err) {
    await stop();
    throw err;
  }
  return { socketPath, stop };
}

/** Makes an async function run once; later calls share the first call's promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

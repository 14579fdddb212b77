import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { freePort } from "./process-env.js";
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

/** One member of a {@link TestNatsCluster}. */
export interface TestNatsNode {
  /** Server name (`-n`): what `$JS.API.STREAM.INFO.<stream>` reports as `cluster.leader`. */
  name: string;
  url: string;
  /** SIGKILLs the node (a crash: no clean shutdown, no leadership handed over); its store stays until `stop()`. */
  kill(): Promise<void>;
}

/** Three JetStream nats-servers clustered on loopback; `stop()` stops every node and deletes their stores. */
export interface TestNatsCluster {
  /** Every node's client URL, comma-separated: a NATS_URL. */
  url: string;
  nodes: TestNatsNode[];
  /** The node named `name`. */
  node(name: string): TestNatsNode;
  stop(): Promise<void>;
}

const clusterSize = 3;

/**
 * Starts a 3-node JetStream cluster on 127.0.0.1 (free client and route ports, a store per node) and resolves once
 * every node follows one metadata leader, so streams with 3 replicas can be made. `configFile` as for
 * {@link startTestNats}: every node admits the same users.
 */
export async function startTestNatsCluster(opts: { configFile?: string } = {}): Promise<TestNatsCluster> {
  const root = await mkdtemp(join(tmpdir(), "vmbs-nats-cluster-"));
  const routePorts = await Promise.all(Array.from({ length: clusterSize }, () => freePort()));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`);
  const names = routePorts.map((_, i) => `vmbs-test-${i}`);
  const started = await Promise.allSettled(
    names.map(async (name, i) =>
      startNatsServer({
        storeDir: join(root, name),
        configFile: opts.configFile,
        name,
        cluster: { name: "vmbs-test", listen: routes[i]!, routes },
        monitoring: true,
      }),
    ),
  );
  const servers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const stop = once(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(root, { recursive: true, force: true });
  });
  try {
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    await waitFor(async () => new Set(await Promise.all(servers.map(metaLeaderOf))).size === 1 && (await metaLeaderOf(servers[0]!)) !== undefined, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: "one JetStream metadata leader followed by every node",
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const nodes = servers.map((server, i): TestNatsNode => ({
    name: names[i]!,
    url: server.url,
    async kill() {
      process.kill(server.pid, "SIGKILL");
      await server.stop();
    },
  }));
  return {
    url: nodes.map((n) => n.url).join(","),
    nodes,
    node(name) {
      const found = nodes.find((n) => n.name === name);
      if (!found) throw new Error(`no node named ${name} (nodes: ${names.join(", ")})`);
      return found;
    },
    stop,
  };
}

/** The metadata leader a node follows (its `/jsz`), undefined while there is none or the node does not answer. */
async function metaLeaderOf(server: RunningNatsServer): Promise<string | undefined> {
  try {
    const res = await fetch(`${server.monitoringUrl}/jsz`, { signal: AbortSignal.timeout(2_000) });
    const jsz = (await res.json()) as { meta_cluster?: { leader?: string } };
    return jsz.meta_cluster?.leader || undefined;
  } catch {
    return undefined;
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

import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

/** Options for {@link startNatsServer}. */
export interface NatsServerOptions {
  /** JetStream store directory (`-sd`). Owned by the caller: it is never deleted. */
  storeDir: string;
  /** Listen address. Default `127.0.0.1`. */
  host?: string;
  /** Client port. Default `-1` (nats-server picks a free port). */
  port?: number;
  /** A config file, e.g. the authorization config of `vmbs auth init`; the options above override it. */
  configFile?: string;
  /** JetStream's disk budget (`max_file_store`): streams are refused writes beyond it. Default: the server's (75 % of the disk). */
  maxFileStoreBytes?: number;
  /** Server name (`-n`), e.g. how a cluster names a stream's leader. Default: the server's id. */
  name?: string;
  /** Joins a cluster: takes routes on `listen` (`nats://127.0.0.1:6222`) and dials `routes` (every member's). */
  cluster?: { name: string; listen: string; routes: readonly string[] };
  /** Serves the monitoring endpoints (`/jsz`, …) on a free port of `host`. */
  monitoring?: boolean;
}

/** A nats-server child process started by {@link startNatsServer}. */
export interface RunningNatsServer {
  /** Client URL read from the ports file, e.g. `nats://127.0.0.1:4222`. */
  url: string;
  /** Base URL of the monitoring endpoints, when started with `monitoring`. */
  monitoringUrl?: string;
  pid: number;
  /** Resolves when the process has exited, for whatever reason (a kill from outside, a crash, or stop()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

const STDERR_TAIL_BYTES = 4096;
const START_TIMEOUT_MS = 15_000;
const KILL_AFTER_MS = 5_000;

/**
 * Starts a JetStream-enabled nats-server as a child process and resolves once it
 * accepts clients (it writes its ports file only after its listeners are up).
 * Rejects with the stderr tail if the server exits early, and with a clear message
 * if the `nats-server` binary is not installed.
 */
export async function startNatsServer(opts: NatsServerOptions): Promise<RunningNatsServer> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? -1;
  // The ports file is the only reliable way to learn a port picked with -p -1.
  const portsDir = await mkdtemp(join(tmpdir(), "vmbs-nats-ports-"));
  const configFile = await writeServerConfig(portsDir, opts);
  const args = [
    ...(configFile ? ["-c", configFile] : []),
    ...["-a", host, "-p", String(port), "-js", "-sd", opts.storeDir, "--ports_file_dir", portsDir],
    ...(opts.name ? ["-n", opts.name] : []),
    ...(opts.cluster ? ["--cluster_name", opts.cluster.name, "--cluster", opts.cluster.listen, "--routes", opts.cluster.routes.join(",")] : []),
    ...(opts.monitoring ? ["-m", "-1"] : []),
  ];
  const child = spawn("nats-server", args, { detached: false, stdio: ["ignore", "ignore", "pipe"] });

  let stderrTail = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
  });

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const spawnError = new Promise<Error>((resolve) => child.on("error", resolve));

  const stop = makeStop(child, exited, portsDir);
  // Lets the polling loop give up as soon as another branch of the race has won.
  const race = { over: false };
  void exited.then(() => (race.over = true));
  void spawnError.then(() => (race.over = true));

  try {
    const ports = await Promise.race([
      waitForPortsFile(portsDir, () => child.pid, race),
      exited.then(({ code, signal }) => {
        throw new Error(
          `nats-server exited before it was ready (code ${code}, signal ${signal}): ${stderrTail.trim() || "(no stderr)"}`,
        );
      }),
      spawnError.then((err) => {
        const code = (err as NodeJS.ErrnoException).code;
        throw code === "ENOENT"
          ? new Error("nats-server is not installed or not on PATH (apt-get install nats-server)", { cause: err })
          : new Error(`could not start nats-server: ${err.message}`, { cause: err });
      }),
    ]);
    return { ...ports, pid: child.pid!, exited, stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    race.over = true;
  }
}

/**
 * The config the server starts with: the caller's file, plus a JetStream block for the disk budget (nats-server
 * has no flag for it). An `include` is resolved against the including file's folder, hence the relative path.
 */
async function writeServerConfig(dir: string, opts: NatsServerOptions): Promise<string | undefined> {
  if (opts.maxFileStoreBytes === undefined) return opts.configFile;
  const file = join(dir, "server.conf");
  const include = opts.configFile ? relative(dir, resolve(opts.configFile)) : undefined;
  await writeFile(file, renderServerConfig(opts.maxFileStoreBytes, include), { mode: 0o600 });
  return file;
}

/**
 * A nats-server config holding JetStream's disk budget (`max_file_store`) and, when given, an `include` of another
 * config (resolved against this file's folder), e.g. the authorization of `vmbs auth init`.
 */
export function renderServerConfig(maxFileStoreBytes: number, include?: string): string {
  const lines = [`jetstream { max_file_store: ${Math.floor(maxFileStoreBytes)} }`];
  if (include) lines.push(`include ${JSON.stringify(include)}`);
  return `${lines.join("\n")}\n`;
}

/** The listeners a server wrote into its ports file. */
interface ServerPorts {
  url: string;
  monitoringUrl?: string;
}

/** Polls for `nats-server_<pid>.ports` until it holds a client URL, the process exits, or the timeout passes. */
async function waitForPortsFile(
  portsDir: string,
  pid: () => number | undefined,
  race: { over: boolean },
): Promise<ServerPorts> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!race.over) {
    const p = pid();
    if (p !== undefined) {
      const ports = await readPortsFile(join(portsDir, `nats-server_${p}.ports`));
      if (ports) return ports;
    }
    if (Date.now() > deadline) throw new Error(`nats-server did not write its ports file within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // Another branch of the race already settled it with the real reason; this is never observed.
  throw new Error("nats-server start abandoned");
}

async function readPortsFile(file: string): Promise<ServerPorts | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    // The file may be caught half-written; a parse error just means "not yet".
    const parsed = JSON.parse(text) as { nats?: unknown; monitoring?: unknown };
    const first = (list: unknown) => (Array.isArray(list) && typeof list[0] === "string" ? list[0] : undefined);
    const url = first(parsed.nats);
    const monitoringUrl = first(parsed.monitoring);
    return url === undefined ? undefined : { url, ...(monitoringUrl === undefined ? {} : { monitoringUrl }) };
  } catch {
    return undefined;
  }
}

function makeStop(
  child: ReturnType<typeof spawn>,
  exited: Promise<unknown>,
  portsDir: string,
): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill("SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(true), KILL_AFTER_MS))),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          child.kill("SIGKILL");
          await exited;
        }
      }
      await rm(portsDir, { recursive: true, force: true });
    })();
    return stopping;
  };
}

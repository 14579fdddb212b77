import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { constants } from "node:fs";
import { access, open } from "node:fs/promises";
import type { Socket } from "node:net";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { LibvirtError, LibvirtTimeoutError } from "./virt-errors.js";

/** The Python side (libs/virt/bridge): one libvirt connection kept open for the whole process. */
const BRIDGE_SCRIPT = fileURLToPath(new URL("../bridge/libvirt-bridge.py", import.meta.url));

/** Kept of the bridge's stderr, to explain why it ended. */
const STDERR_TAIL = 2000;

/** Default limit of one libvirt call (VMBS_LIBVIRT_TIMEOUT): reads answer in milliseconds, a stuck one never. */
export const DEFAULT_LIBVIRT_TIMEOUT_MS = 60_000;

/**
 * Calls that wait for QEMU rather than only for libvirtd get three times the limit: a start launches QEMU, a
 * destroy waits for it to flush and die, deleting a checkpoint merges a bitmap in the image.
 */
const SLOW_OPS = new Set(["start", "destroy", "deleteCheckpoint", "undefine", "blockJobAbort"]);
const SLOW_FACTOR = 3;

export interface LibvirtBridgeOptions {
  /** The Python interpreter; default: the one virtnbdbackup runs with (its package brings the libvirt binding). */
  python?: string;
  /** Limit of one call in ms (start, destroy and deleteCheckpoint get 3×); default DEFAULT_LIBVIRT_TIMEOUT_MS. */
  timeoutMs?: number;
}

export interface LibvirtBridge {
  /**
   * One libvirt operation (see READS and WRITES in libvirt-bridge.py); rejects with a LibvirtError, or a
   * LibvirtTimeoutError when no answer came in time (the bridge is then restarted).
   */
  call(op: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Ends the bridge process; a later call starts a new one. */
  close(): Promise<void>;
}

/** The limit of one call of `op` with the base limit `baseMs`. */
export function callTimeoutMs(op: string, baseMs = DEFAULT_LIBVIRT_TIMEOUT_MS): number {
  return SLOW_OPS.has(op) ? baseMs * SLOW_FACTOR : baseMs;
}

interface Pending {
  op: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One bridge process and the calls it still owes an answer. */
interface Bridge {
  proc: ChildProcessWithoutNullStreams;
  pending: Map<number, Pending>;
  /** Why it ended (set once, the first reason wins), for a call that comes after. */
  endedWhy?: string;
}

interface Answer {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { message: string; code: number | null };
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * The interpreter named by virtnbdbackup's `#!` line: whatever Python the engine runs under has the libvirt
 * binding (a python3 earlier in PATH, e.g. pyenv's, may not). Falls back to /usr/bin/python3.
 */
export async function enginePython(searchPath = process.env.PATH ?? ""): Promise<string> {
  for (const dir of searchPath.split(delimiter).filter(Boolean)) {
    const engine = join(dir, "virtnbdbackup");
    if (!(await isExecutable(engine))) continue;
    const file = await open(engine, "r");
    try {
      const { buffer, bytesRead } = await file.read(Buffer.alloc(256), 0, 256, 0);
      const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(buffer.subarray(0, bytesRead).toString("utf8").split("\n")[0] ?? "");
      if (shebang) return shebang[1]!.endsWith("/env") && shebang[2] ? shebang[2] : shebang[1]!;
    } finally {
      await file.close();
    }
  }
  return "/usr/bin/python3";
}

/**
 * Starts the bridge on first use and again after it ended. While no call is pending it does not keep Node's
 * event loop alive, so a short-lived user need not close it.
 */
export function createLibvirtBridge(uri: string, options: LibvirtBridgeOptions = {}): LibvirtBridge {
  let current: Bridge | undefined;
  let starting: Promise<Bridge> | undefined;
  let nextId = 1;
  const baseTimeoutMs = options.timeoutMs ?? DEFAULT_LIBVIRT_TIMEOUT_MS;

  const setRef = (proc: ChildProcessWithoutNullStreams, on: boolean): void => {
    for (const s of [proc.stdin, proc.stdout, proc.stderr] as unknown as Socket[]) {
      if (on) s.ref();
      else s.unref();
    }
    if (on) proc.ref();
    else proc.unref();
  };

  const settle = (bridge: Bridge, id: number): Pending | undefined => {
    const p = bridge.pending.get(id);
    if (!p) return undefined;
    clearTimeout(p.timer);
    bridge.pending.delete(id);
    if (bridge.pending.size === 0) setRef(bridge.proc, false);
    return p;
  };

  /** Marks a bridge as gone and fails what it still owes; the first reason stays. */
  const end = (bridge: Bridge, reason: string): void => {
    bridge.endedWhy ??= reason;
    if (current === bridge) current = undefined;
    for (const id of [...bridge.pending.keys()]) {
      const p = settle(bridge, id);
      p?.reject(new LibvirtError(p.op, bridge.endedWhy));
    }
  };

  async function start(): Promise<Bridge> {
    const python = options.python ?? (await enginePython());
    // -I: no user site-packages or PYTHON* variables steering the import; -X utf8: names cross as UTF-8 whatever the locale.
    const proc = spawn(python, ["-I", "-X", "utf8", BRIDGE_SCRIPT, uri], { stdio: ["pipe", "pipe", "pipe"] });
    const bridge: Bridge = { proc, pending: new Map() };
    let stderr = "";
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    // A write after the process died: the exit handler below fails the calls.
    proc.stdin.on("error", () => undefined);
    createInterface({ input: proc.stdout }).on("line", (line) => {
      let answer: Answer;
      try {
        answer = JSON.parse(line) as Answer;
      } catch {
        return; // not ours (the bridge writes nothing else to stdout)
      }
      const p = settle(bridge, answer.id);
      if (!p) return;
      if (answer.ok) p.resolve(answer.result ?? null);
      else p.reject(new LibvirtError(p.op, answer.error?.message ?? "unknown error", answer.error?.code ?? undefined));
    });
    // A failed spawn reports "error" and may report "exit" too: the first, more telling reason stays.
    const ended = (why: string) => end(bridge, `the libvirt bridge (${python}) ${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`);
    proc.on("error", (err) => ended(`could not run: ${err.message}`));
    proc.on("exit", (code, signal) => ended(`ended (${signal ?? `exit code ${code}`})`));
    setRef(proc, false);
    return bridge;
  }

  async function running(): Promise<Bridge> {
    if (current && !current.endedWhy) return current;
    starting ??= start().finally(() => (starting = undefined));
    current = await starting;
    return current;
  }

  /**
   * A call without an answer: its libvirt connection may be wedged (libvirtd stopped, a remote host gone), and
   * the Python side holds the connection lock meanwhile, so every later call would hang too. The process is
   * killed (its worker thread cannot be interrupted) and the next call starts a fresh one.
   */
  const timedOut = (bridge: Bridge, id: number, limitMs: number): void => {
    const p = settle(bridge, id);
    if (!p) return;
    p.reject(new LibvirtTimeoutError(p.op, limitMs, { cause: new Error(`libvirt at ${uri} did not answer ${p.op}`) }));
    end(bridge, `the libvirt bridge was restarted: ${p.op} got no answer within ${limitMs / 1000} s`);
    bridge.proc.kill("SIGKILL");
  };

  return {
    async call(op, args = {}) {
      const bridge = await running();
      const id = nextId++;
      return new Promise((resolve, reject) => {
        if (bridge.endedWhy) return reject(new LibvirtError(op, bridge.endedWhy));
        if (bridge.pending.size === 0) setRef(bridge.proc, true);
        const limitMs = callTimeoutMs(op, baseTimeoutMs);
        bridge.pending.set(id, { op, resolve, reject, timer: setTimeout(() => timedOut(bridge, id, limitMs), limitMs) });
        bridge.proc.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
      });
    },
    async close() {
      const bridge = current;
      current = undefined;
      const proc = bridge?.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      setRef(proc, true);
      proc.stdin.end();
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

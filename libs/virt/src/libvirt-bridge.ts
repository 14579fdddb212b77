import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { constants } from "node:fs";
import { access, open } from "node:fs/promises";
import type { Socket } from "node:net";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { LibvirtError } from "./virt-errors.js";

/** The Python side (libs/virt/bridge): one libvirt connection kept open for the whole process. */
const BRIDGE_SCRIPT = fileURLToPath(new URL("../bridge/libvirt-bridge.py", import.meta.url));

/** Kept of the bridge's stderr, to explain why it ended. */
const STDERR_TAIL = 2000;

export interface LibvirtBridgeOptions {
  /** The Python interpreter; default: the one virtnbdbackup runs with (its package brings the libvirt binding). */
  python?: string;
}

export interface LibvirtBridge {
  /** One libvirt operation (see READS and WRITES in libvirt-bridge.py); rejects with a LibvirtError. */
  call(op: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Ends the bridge process; a later call starts a new one. */
  close(): Promise<void>;
}

interface Pending {
  op: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
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
  let child: ChildProcessWithoutNullStreams | undefined;
  let starting: Promise<ChildProcessWithoutNullStreams> | undefined;
  const pending = new Map<number, Pending>();
  /** Why a bridge process ended, for a call that comes after (e.g. a spawn error before any answer). */
  const endedWhy = new WeakMap<ChildProcessWithoutNullStreams, string>();
  let nextId = 1;

  const setRef = (proc: ChildProcessWithoutNullStreams, on: boolean): void => {
    for (const s of [proc.stdin, proc.stdout, proc.stderr] as unknown as Socket[]) {
      if (on) s.ref();
      else s.unref();
    }
    if (on) proc.ref();
    else proc.unref();
  };

  const settle = (id: number): Pending | undefined => {
    const p = pending.get(id);
    pending.delete(id);
    if (pending.size === 0 && child) setRef(child, false);
    return p;
  };

  async function start(): Promise<ChildProcessWithoutNullStreams> {
    const python = options.python ?? (await enginePython());
    // -I: no user site-packages or PYTHON* variables steering the import; -X utf8: names cross as UTF-8 whatever the locale.
    const proc = spawn(python, ["-I", "-X", "utf8", BRIDGE_SCRIPT, uri], { stdio: ["pipe", "pipe", "pipe"] });
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
      const p = settle(answer.id);
      if (!p) return;
      if (answer.ok) p.resolve(answer.result ?? null);
      else p.reject(new LibvirtError(p.op, answer.error?.message ?? "unknown error", answer.error?.code ?? undefined));
    });
    const ended = (why: string): void => {
      if (child === proc) child = undefined;
      // A failed spawn reports "error" and may report "exit" too: the first, more telling reason stays.
      const reason = endedWhy.get(proc) ?? `the libvirt bridge (${python}) ${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`;
      endedWhy.set(proc, reason);
      for (const [id, p] of pending) {
        settle(id);
        p.reject(new LibvirtError(p.op, reason));
      }
    };
    proc.on("error", (err) => ended(`could not run: ${err.message}`));
    proc.on("exit", (code, signal) => ended(`ended (${signal ?? `exit code ${code}`})`));
    setRef(proc, false);
    return proc;
  }

  async function running(): Promise<ChildProcessWithoutNullStreams> {
    if (child && endedWhy.has(child)) child = undefined;
    if (child) return child;
    starting ??= start().finally(() => (starting = undefined));
    child = await starting;
    return child;
  }

  return {
    async call(op, args = {}) {
      const proc = await running();
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const gone = endedWhy.get(proc);
        if (gone) return reject(new LibvirtError(op, gone));
        if (pending.size === 0) setRef(proc, true);
        pending.set(id, { op, resolve, reject });
        proc.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
      });
    },
    async close() {
      const proc = child;
      child = undefined;
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

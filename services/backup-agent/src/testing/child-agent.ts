import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { chainEventSchema, backupEventSchema, subjects, type BackupEvent, type ChainEvent } from "@vmbs/contracts";
import type { NatsConnection } from "@vmbs/bus";
import { waitFor } from "@vmbs/lab";

/** The built CLI, run as `vmbs agent` in its own process group so a test can SIGKILL it with its engine. */
const cliMain = fileURLToPath(new URL("../../../../cli/dist/main.js", import.meta.url));

export interface ChildAgent {
  proc: ChildProcess;
  /** kill -9 of the whole process group: the agent and the virtnbdbackup it runs, no cleanup anywhere. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/** Starts `node cli/dist/main.js agent` with `env` on top of this process's environment. */
export function startChildAgent(env: Record<string, string>): ChildAgent {
  const proc = spawn(process.execPath, [cliMain, "agent"], {
    env: { ...process.env, LOG_LEVEL: "debug", ...env },
    detached: true,
    stdio: ["ignore", "ignore", process.env.VMBS_TEST_LOG ? "inherit" : "ignore"],
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return {
    proc,
    async kill9() {
      if (proc.pid) process.kill(-proc.pid, "SIGKILL");
      await exited;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** Every backup and chain event of one host, in arrival order. */
export interface EventLog {
  backup: BackupEvent[];
  chain: ChainEvent[];
  waitBackup(match: (e: BackupEvent) => boolean, timeoutMs?: number): Promise<BackupEvent>;
  waitChain(match: (e: ChainEvent) => boolean, timeoutMs?: number): Promise<ChainEvent>;
  stop(): void;
}

export function recordEvents(nc: NatsConnection, host: string): EventLog {
  const backup: BackupEvent[] = [];
  const chain: ChainEvent[] = [];
  const subs = [nc.subscribe(subjects.evt.backupAll(host)), nc.subscribe(subjects.evt.chainAll(host))];
  void (async () => {
    for await (const m of subs[0]!) {
      const parsed = backupEventSchema.safeParse(m.json());
      if (parsed.success) backup.push(parsed.data);
    }
  })();
  void (async () => {
    for await (const m of subs[1]!) {
      const parsed = chainEventSchema.safeParse(m.json());
      if (parsed.success) chain.push(parsed.data);
    }
  })();
  return {
    backup,
    chain,
    waitBackup: (match, timeoutMs = 120_000) => waitFor(() => backup.find(match), { timeoutMs, what: "a matching backup event" }),
    waitChain: (match, timeoutMs = 120_000) => waitFor(() => chain.find(match), { timeoutMs, what: "a matching chain event" }),
    stop: () => subs.forEach((s) => s.unsubscribe()),
  };
}

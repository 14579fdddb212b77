import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chainEventSchema, backupEventSchema, subjects, type BackupEvent, type ChainEvent } from "@vmbs/contracts";
import type { NatsConnection } from "@vmbs/bus";
import { waitFor } from "./wait-for.js";

/** The built CLI, run as `vmbs agent` in its own process group so a test can SIGKILL it with its engine. */
const cliMain = fileURLToPath(new URL("../../../cli/dist/main.js", import.meta.url));

export interface ChildAgent {
  proc: ChildProcess;
  /** kill -9 of the whole process group: the agent and the virtnbdbackup it runs, no cleanup anywhere. A no-op once all of it has exited. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /**
   * Freezes (SIGSTOP) this agent's virtnbdbackup of `domain` as soon as it starts, then lets it run in short slices
   * until `inTransfer()` holds: a run caught mid-transfer whatever the amount of data, so tests can stay small.
   * Call it before the backup command is published. The engine stays stopped; kill9 ends it.
   */
  freezeEngineWhen(domain: string, inTransfer: () => Promise<boolean>): Promise<void>;
}

/** The pid of the process in process group `pgid` run with the argument `--domain=<domain>`, if any. */
async function engineInGroup(pgid: number, domain: string): Promise<number | undefined> {
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    // Fields after the parenthesised command name: state, ppid, pgrp, ...
    const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    if (pgrp !== pgid) continue;
    const args = (await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (args.includes(`--domain=${domain}`)) return Number(name);
  }
  return undefined;
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
      try {
        if (proc.pid) process.kill(-proc.pid, "SIGKILL");
      } catch (err) {
        // The group is gone already (the agent stopped and left no engine behind): nothing to kill.
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
      await exited;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await exited;
    },
    async freezeEngineWhen(domain, inTransfer) {
      const pid = await waitFor(() => engineInGroup(proc.pid!, domain), { timeoutMs: 60_000, intervalMs: 5, what: `the engine of ${domain}` });
      process.kill(pid, "SIGSTOP");
      await waitFor(
        async () => {
          if (await inTransfer()) return true;
          process.kill(pid, "SIGCONT");
          await new Promise((r) => setTimeout(r, 20));
          process.kill(pid, "SIGSTOP");
          return false;
        },
        { timeoutMs: 60_000, intervalMs: 1, what: `the engine of ${domain} in mid-transfer` },
      );
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

import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectBus, type NatsConnection } from "@vmbs/bus";
import { streams, subjects, type BackupEvent, type ChainEvent } from "@vmbs/contracts";
import { imageDigest } from "./disk-digest.js";
import { hashTree } from "./hash-tree.js";
import { ignoredListExcept } from "./ignore-list.js";
import { createLab, type Lab } from "./lab.js";
import { restoreChain } from "./restore.js";
import { startTestNats, type TestNats } from "./servers.js";
import { recordEvents, startChildAgent, type ChildAgent, type EventLog } from "./child-agent.js";

/*
 * Shared stack of the chain-check acceptance tests: nats-server, a libvirt lab, one backup root, agents run
 * as child processes (`vmbs agent`) so they can be SIGKILLed with their virtnbdbackup, as a crash would.
 */

export const MiB = 1024 * 1024;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const completed = (domain: string, requestId?: string) => (e: BackupEvent) =>
  e.domain === domain && e.type === "completed" && (requestId === undefined || e.requestId === requestId);
export const outcome = (requestId: string) => (e: BackupEvent) => e.requestId === requestId && e.type !== "started";
/** A chain event of `domain` and `type`, newer than `since` (ISO time) when given. */
export const chainOf = (domain: string, type: ChainEvent["type"], step?: RegExp, since = "") => (e: ChainEvent) =>
  e.domain === domain && e.type === type && (step === undefined || step.test(e.step ?? "")) && e.at > since;

export interface ChainTestKit {
  nats: TestNats;
  nc: NatsConnection;
  lab: Lab;
  backupRoot: string;
  virsh(...args: string[]): Promise<string>;
  checkpoints(domain: string): Promise<string[]>;
  jobType(domain: string): Promise<string | undefined>;
  /**
   * An agent serving only `domains`. Its ignore list is a snapshot, so it would adopt any domain defined
   * later (by the next test, or a parallel run): call stopAgents after each test, pass or fail.
   */
  agentFor(host: string, domains: string[], env?: Record<string, string>): Promise<ChildAgent>;
  stopAgents(): Promise<void>;
  events(host: string): EventLog;
  backup(host: string, body: Record<string, unknown>): void;
  /** The killed run's command is still unacked; drop it so the restarted agent does not redo it mid-test. */
  dropPendingCommands(host: string): Promise<void>;
  partialIn(folder: string): Promise<string[]>;
  /** sha256 of every file below `dir`, by relative path. */
  hashTree(dir: string): Promise<Record<string, string>>;
  /** Digest of the disk restored from `folder` up to checkpoint `until`; any ERROR line fails. */
  restoreDigest(folder: string, until: string): Promise<string>;
  archivesOf(domain: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function createChainTestKit(): Promise<ChainTestKit> {
  const nats = await startTestNats();
  const nc = await connectBus(nats.url, "chain-check-test");
  const lab = await createLab();
  const backupRoot = join(await lab.tempDir("chains-"), "backups");
  await mkdir(backupRoot);
  const agents: ChildAgent[] = [];
  const logs: EventLog[] = [];
  const virsh = async (...args: string[]) => (await execa("virsh", ["-q", "-c", lab.uri, ...args])).stdout.trim();
  const stopAgents = async () => {
    for (const a of agents.splice(0)) await a.stop().catch(() => undefined);
  };
  return {
    nats,
    nc,
    lab,
    backupRoot,
    virsh,
    checkpoints: async (d) => (await virsh("checkpoint-list", "--domain", d, "--name", "--topological")).split("\n").filter(Boolean),
    jobType: async (d) => /Job type:\s*(\S+)/.exec(await virsh("domjobinfo", "--domain", d))?.[1],
    async agentFor(host, domains, env = {}) {
      const agent = startChildAgent({
        NATS_URL: nats.url,
        HOST_ID: host,
        LOCAL_BACKUP_PATH: backupRoot,
        LOGFILE_PATH: join(backupRoot, "..", `agent-${host}.log`),
        VMBS_STATE_DIR: join(backupRoot, "..", "state"),
        VM_IGNORED_LIST: await ignoredListExcept(lab.uri, domains),
        // Domains another test file creates meanwhile are not this agent's either.
        VM_ALLOWED_LIST: lab.allowedList,
        ...env,
      });
      agents.push(agent);
      return agent;
    },
    stopAgents,
    events(host) {
      const log = recordEvents(nc, host);
      logs.push(log);
      return log;
    },
    backup(host, body) {
      nc.publish(subjects.cmd.backup(host), JSON.stringify(body));
    },
    async dropPendingCommands(host) {
      await (await jetstreamManager(nc)).streams.purge(streams.commands, { filter: subjects.cmd.backup(host) });
    },
    partialIn: async (folder) => (await readdir(folder).catch(() => [] as string[])).filter((f) => f.endsWith(".partial")),
    hashTree: (dir) => hashTree(dir),
    async restoreDigest(folder, until) {
      return imageDigest(await restoreChain(folder, await lab.tempDir("restore-"), { until }));
    },
    archivesOf: async (domain) => (await readdir(backupRoot)).filter((n) => n.startsWith(`${domain}.`)),
    async close() {
      await stopAgents();
      for (const l of logs) l.stop();
      await nc.close();
      await nats.stop();
      await lab.cleanup();
    },
  };
}

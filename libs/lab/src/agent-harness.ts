import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { authFileNames, connectBus, createBusAuth, durablesOf, setUpBus, type BusAuth, type NatsConnection } from "@vmbs/bus";
import { loadConfig } from "@vmbs/config";
import { backupEventSchema, roleId, roleInboxPrefix, subjects, type BackupEvent, type BusRole } from "@vmbs/contracts";
import { ignoredListExcept } from "./ignore-list.js";
import { createLab, type Lab } from "./lab.js";
import { startTestNats, type TestNats } from "./servers.js";
import { testLogger } from "./test-logger.js";
import { waitFor } from "./wait-for.js";
import { startBackupAgent, type BackupAgentDeps, type BackupAgentHandle } from "@vmbs/backup-agent";

/** A real stack for one test file: nats-server, a libvirt lab, a backup root and an agent (or several). */
export interface AgentHarness {
  nats: TestNats;
  nc: NatsConnection;
  lab: Lab;
  host: string;
  backupRoot: string;
  /** VMBS_STATE_DIR of the agents (outbox and command outcomes under `agent/<host>/`). */
  stateDir: string;
  /** Every backup event seen on this host's subjects, in order. */
  events: BackupEvent[];
  /** Starts an agent with the harness's config plus `env`; `chainFiles` lets a test watch its chain reads. */
  startAgent(env?: Record<string, string>, with_?: Pick<BackupAgentDeps, "chainFiles" | "progressIntervalMs">): Promise<BackupAgentHandle>;
  /** Waits for the first event matching `match` (events already seen count). */
  waitEvent(match: (e: BackupEvent) => boolean, timeoutMs?: number): Promise<BackupEvent>;
  /** Publishes a raw body with a plain core publish, as `nats pub` does. */
  publishRaw(body: string): void;
  close(): Promise<void>;
}

export interface AgentHarnessOptions {
  /**
   * Run the server with the authorization config of `vmbs auth init`: the test's own connection (`nc`) is the
   * operator, every agent connects with this host's agent credential (least privilege).
   */
  auth?: boolean;
}

export async function createAgentHarness(host: string, opts: AgentHarnessOptions = {}): Promise<AgentHarness> {
  const lab = await createLab();
  // In a folder of its own: what appears beside it is this harness's doing, not another test file's (a test checks
  // that a hostile command creates nothing there).
  const backupRoot = join(await lab.tempDir("agent-"), "backups");
  await mkdir(backupRoot);
  const generated = opts.auth ? createBusAuth({ hosts: [host] }) : undefined;
  let configFile: string | undefined;
  if (generated) {
    configFile = join(await lab.tempDir("auth-"), authFileNames.serverConfig);
    await writeFile(configFile, generated.serverConfig);
  }
  const credential = (role: BusRole): BusAuth => {
    const c = generated?.credentials.find((x) => x.id === roleId(role));
    return c ? { nkeySeed: c.seed, inboxPrefix: roleInboxPrefix(role) } : {};
  };
  const nats = await startTestNats({ configFile });
  const nc = await connectBus(nats.url, "test", credential({ kind: "operator" }));
  const agentConnections: NatsConnection[] = [];
  const stateDir = await lab.tempDir("state-");
  const events: BackupEvent[] = [];
  const sub = nc.subscribe(subjects.evt.backupAll(host));
  void (async () => {
    for await (const m of sub) {
      const parsed = backupEventSchema.safeParse(m.json());
      if (parsed.success) events.push(parsed.data);
    }
  })();
  const agents: BackupAgentHandle[] = [];
  return {
    nats,
    nc,
    lab,
    host,
    backupRoot,
    stateDir,
    events,
    async startAgent(env = {}, with_ = {}) {
      const config = loadConfig({
        LOCAL_BACKUP_PATH: backupRoot,
        HOST_ID: host,
        VMBS_STATE_DIR: stateDir,
        // Every domain that exists now is ignored: tests create theirs after the agent started.
        VM_IGNORED_LIST: await ignoredListExcept(lab.uri),
        // Nor does it ever touch a domain another test file creates meanwhile.
        VM_ALLOWED_LIST: lab.allowedList,
        ...env,
      });
      const logger = testLogger("test-agent");
      // As vmbs start does: the operator makes what the agent's role may not (buckets, its durables).
      if (generated) await setUpBus(nc, { durables: durablesOf([{ kind: "agent", host }], { commandAckWaitMs: config.VMBS_COMMAND_ACK_WAIT * 1000 }) });
      const agentNc = generated ? await connectBus(nats.url, `agent-${host}`, credential({ kind: "agent", host })) : nc;
      if (agentNc !== nc) agentConnections.push(agentNc);
      const agent = await startBackupAgent({ config, nc: agentNc, logger, heartbeatMs: 1000, ...with_ });
      agents.push(agent);
      return agent;
    },
    waitEvent(match, timeoutMs = 120_000) {
      return waitFor(() => events.find(match), { timeoutMs, what: "a matching backup event" });
    },
    publishRaw(body) {
      nc.publish(subjects.cmd.backup(host), body);
    },
    async close() {
      for (const agent of agents) await agent.stop().catch(() => undefined);
      sub.unsubscribe();
      for (const c of agentConnections) await c.close();
      await nc.close();
      await nats.stop();
      await lab.cleanup();
    },
  };
}

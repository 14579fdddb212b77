import { basename } from "node:path";
import { rm } from "node:fs/promises";
import { execa } from "execa";
import { createAgentHarness, testLogger, type AgentHarness } from "@vmbs/lab";
import { loadConfig } from "@vmbs/config";
import { drillEventSchema, restoreEventSchema, subjects, type DrillEvent, type RestoreEndpoint, type RestoreEvent } from "@vmbs/contracts";
import { startRestoreService, type RestoreServiceDeps, type RestoreServiceHandle } from "../restore-service.js";

/** How a lab test runs the restore service: config values beyond the harness's own, and its tuning. */
export interface RestoreLabServiceOptions extends Pick<RestoreServiceDeps, "chainWaitMs" | "maxConcurrent"> {
  env?: Record<string, string>;
}

export interface RestoreLabKitOptions {
  /** Run a backup agent for the host (the default); without one the test makes the streams itself. */
  agent?: boolean;
  /** Called with each image pool's folder before the pool goes (e.g. to end exports still serving from it). */
  releasePool?: (dir: string) => Promise<void>;
}

/**
 * The set-up the restore service's lab tests share: an agent harness for `host`, the restore service on it, its
 * events collected, requests to its endpoints, and one `stop()` for after() that removes what the test made.
 */
export type RestoreLabKit = ReturnType<typeof createRestoreLabKit>;

export function createRestoreLabKit(host: string, options: RestoreLabKitOptions = {}) {
  let harness: AgentHarness | undefined;
  let service: RestoreServiceHandle | undefined;
  let serviceOptions: RestoreLabServiceOptions = {};
  const events: RestoreEvent[] = [];
  const drills: DrillEvent[] = [];
  const made: string[] = [];
  const files: string[] = [];
  const pools: { name: string; dir: string }[] = [];
  const h = (): AgentHarness => {
    if (!harness) throw new Error("restore lab kit: start() first");
    return harness;
  };
  const virsh = (args: string[], uri = h().lab.uri) => execa("virsh", ["-c", uri, ...args], { stdin: "ignore", timeout: 60_000 });
  const collect = <T>(subject: string, parse: (v: unknown) => T, into: T[]) => {
    const sub = h().nc.subscribe(subject);
    void (async () => {
      for await (const m of sub) into.push(parse(m.json()));
    })();
  };

  return {
    /** The harness: there from `start()` on. */
    get h() {
      return h();
    },
    /** Every restore event of the host, in order. */
    events,
    /** Every drill event of the host, in order. */
    drills,
    /** Domains the test made: destroyed and undefined (with nvram and checkpoint records) by `stop()`. */
    made,
    /** Files the test made outside the lab's folders: removed by `stop()`. */
    files,
    /** Creates the harness (and the agent) and starts collecting events. */
    async start() {
      harness = await createAgentHarness(host);
      if (options.agent !== false) await harness.startAgent();
      collect(subjects.evt.serviceAll("restore", host), (v) => restoreEventSchema.parse(v), events);
      collect(subjects.evt.serviceAll("drill", host), (v) => drillEventSchema.parse(v), drills);
      return harness;
    },
    /** Starts the restore service; without options, with those of the previous start. `stop()` stops the latest. */
    async startService(options: RestoreLabServiceOptions = serviceOptions) {
      serviceOptions = options;
      const { env, ...tuning } = options;
      const config = loadConfig({ LOCAL_BACKUP_PATH: h().backupRoot, HOST_ID: host, LIBVIRT_URI: h().lab.uri, ...env });
      service = await startRestoreService({ config, nc: h().nc, logger: testLogger("test-restore"), ...tuning });
      return service;
    },
    /** virsh on the lab's connection, or on `uri`. */
    virsh,
    /** A request to an endpoint; its error and code (Nats-Service-Error headers) and the JSON reply. */
    async request(endpoint: RestoreEndpoint, body: unknown, timeout = 300_000) {
      const msg = await h().nc.request(subjects.svc.restoreEndpoint(host, endpoint), JSON.stringify(body), { timeout });
      return { error: msg.headers?.get("Nats-Service-Error") || undefined, code: msg.headers?.get("Nats-Service-Error-Code"), json: msg.json() as unknown };
    },
    /** A new folder made a libvirt storage pool: new domains' images may only go where libvirt keeps images. */
    async imagePool(prefix: string) {
      const dir = await h().lab.tempDir(prefix);
      const name = `vmbs-test-${basename(dir)}`;
      await virsh(["pool-define-as", name, "dir", "--target", dir]);
      pools.push({ name, dir });
      return dir;
    },
    /** For after(): stops the service, removes what the test made and closes the harness. */
    async stop() {
      await service?.stop();
      if (!harness) return;
      for (const name of made) {
        await virsh(["destroy", name]).catch(() => undefined);
        // A domain without nvram or checkpoints may refuse the flags on some libvirt versions: then plainly.
        await virsh(["undefine", "--checkpoints-metadata", "--nvram", name]).catch(() => virsh(["undefine", name]).catch(() => undefined));
      }
      for (const f of files) await rm(f, { force: true });
      for (const pool of pools) {
        await options.releasePool?.(pool.dir);
        await virsh(["pool-undefine", pool.name]).catch(() => undefined);
      }
      await harness.close();
    },
  };
}

/**
 * Scale, simulated: 500 hosts × 20 domains on a real nats-server with the generated roles and the bus set up.
 *
 *   node bench/dist/fleet-scale.js [--hosts N, default 500] [--domains N, default 20] [--requests N, default 100]
 *   (or `npm run bench:fleet`)
 *
 * The agents are simulated: the bench writes every host's heartbeat (its inventory in `vmbs_hosts`, again every 30 s
 * while it runs) with that host's agent credential, and a day of events with the agent's (backup) and the mirror's
 * (mirror) credential of each host — no libvirt, no virtnbdbackup. Then, side by side in one run:
 *   - the status service, `vmbs status-service` in a process of its own: its catch-up on those events and
 *     heartbeats, the p50/p99 of its `vmbs.svc.status.fleet` reply for the whole fleet and for one host (asked and
 *     decoded in full by a worker thread of the bench's, see fleet-requests.ts), and its RSS
 *     (VmRSS, sampled every 100 ms from its start to the end of the requests);
 *   - the scheduler: one slot (a backup command per scheduled domain, 10 000) published into VMBS_CMD, timed from the
 *     slot's start to the last stream ack.
 * Targets: fleet reply p99 ≤ 250 ms, one host p99 ≤ 20 ms, slot ≤ 5 s, RSS ≤ 200 MB. Exit 1 when one is missed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { jetstreamManager } from "@nats-io/jetstream";
import { openBucket, publishJson, statusDurable, type KV, type NatsConnection } from "@vmbs/bus";
import { buckets, streams, subjects, type FleetStatus, type HostInventory } from "@vmbs/contracts";
import { startRoleBus, type RoleBus } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { createSlotPublisher } from "@vmbs/scheduler";
import { positiveIntFlag } from "./cli-args.js";
import type { FleetRequestsJob, FleetRequestsResult } from "./fleet-requests.js";
import { runBench } from "./run-bench.js";

const TARGETS = { fleetP99Ms: 250, hostP99Ms: 20, slotMs: 5_000, rssMb: 200 };
const MiB = 1024 * 1024;
const HEARTBEAT_MS = 30_000;
const vmbs = fileURLToPath(new URL("../../cli/dist/main.js", import.meta.url));

const hostName = (i: number): string => `hv${String(i + 1).padStart(3, "0")}`;
const domainName = (i: number): string => `vm-${String(i + 1).padStart(2, "0")}`;

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

/** One simulated host: its agent's and its mirror's connections, and its inventory. */
interface SimHost {
  host: string;
  agent: NatsConnection;
  mirror: NatsConnection;
  hostsKv: KV;
  domains: HostInventory["domains"];
}

async function beat(h: SimHost): Promise<void> {
  const inventory: HostInventory = { host: h.host, hostname: h.host, agentVersion: "0.1.0", heartbeatAt: new Date().toISOString(), versions: { virtnbdbackup: "2.18", libvirt: "9.0.0" }, domains: h.domains };
  await h.hostsKv.put(h.host, JSON.stringify(inventory));
}

/**
 * A day of one host's events: per domain one backup run (`started` + `completed`; a full once a week per domain, else
 * an incremental), mirrored (`started` + `completed`); 3 % of the domains first have a run that failed and was retried,
 * 1 % of the mirror syncs fail. Runs spread over the night from 03:00 yesterday. Returns the events published.
 */
async function publishDay(h: SimHost, hostIndex: number, dayStart: number): Promise<number> {
  let n = 0;
  const at = (ms: number): string => new Date(ms).toISOString();
  const agentPub = async (type: "started" | "completed" | "failed", payload: Record<string, unknown>): Promise<void> => {
    await publishJson(h.agent, subjects.evt.backup(h.host, type), { type, host: h.host, ...payload });
    n++;
  };
  for (let d = 0; d < h.domains.length; d++) {
    const domain = h.domains[d]!.name;
    const seed = hostIndex * 1000 + d;
    let t = dayStart + ((seed * 7919) % (4 * 3600_000));
    const requestId = `schedule:${at(dayStart)}`;
    if (seed % 33 === 0) {
      const runId = `r-${h.host}-${d}-0`;
      await agentPub("started", { domain, requestId, runId, level: "inc", requestedLevel: "auto", at: at(t) });
      await agentPub("failed", { domain, requestId, runId, level: "inc", reason: "virtnbdbackup exited 1: Unable to connect to NBD server", bytesWritten: 0, durationMs: 4_000, at: at((t += 4_000)) });
      t += 300_000;
    }
    const full = (seed + 3) % 7 === 0;
    const level = full ? "full" : "inc";
    const index = full ? 0 : 1 + ((seed * 31) % 6);
    const runId = `r-${h.host}-${d}-1`;
    const bytesWritten = full ? 20 * 1024 * MiB : (64 + (seed % 512)) * MiB;
    const durationMs = full ? 600_000 : 40_000 + (seed % 60) * 1000;
    await agentPub("started", { domain, requestId, runId, level, requestedLevel: "auto", at: at(t) });
    await agentPub("completed", {
      domain,
      requestId,
      runId,
      level,
      checkpoint: `virtnbdbackup.${index}`,
      bytesWritten,
      durationMs,
      folder: domain,
      ...(full ? { archivedTo: `${domain}.${at(t - 7 * 86_400_000).replace(/[:.]/g, "")}` } : {}),
      at: at((t += durationMs)),
    });
    const mirrorRun = `m-${h.host}-${d}`;
    const mirrorBase = { host: h.host, domain, runId: mirrorRun, trigger: "backup", target: "backup@nas:/srv/vmbs-mirror" };
    await publishJson(h.mirror, subjects.evt.mirror(h.host, "started"), { ...mirrorBase, type: "started", at: at((t += 1_000)) });
    const mirrorFailed = seed % 97 === 5;
    await publishJson(
      h.mirror,
      subjects.evt.mirror(h.host, mirrorFailed ? "failed" : "completed"),
      mirrorFailed
        ? { ...mirrorBase, type: "failed", reason: "rsync exited 12: connection unexpectedly closed", at: at((t += 30_000)) }
        : { ...mirrorBase, type: "completed", bytesTransferred: bytesWritten, durationMs: Math.round(durationMs / 2), verifiedFiles: 6, at: at((t += durationMs / 2)) },
    );
    n += 2;
  }
  return n;
}

async function main(stop: AbortSignal): Promise<void> {
  const argv = process.argv.slice(2);
  const hostCount = positiveIntFlag(argv, "hosts", 500);
  const domainCount = positiveIntFlag(argv, "domains", 20);
  const requests = positiveIntFlag(argv, "requests", 100);
  console.log(`machine: nproc=${availableParallelism()} mem=${(totalmem() / 2 ** 30).toFixed(1)}GiB node=${process.version}`);
  console.log(`fleet: ${hostCount} hosts × ${domainCount} domains = ${hostCount * domainCount} domains, SIMULATED`);
  console.log("simulated agents: KV heartbeats and JetStream events published by the bench, no libvirt");
  console.log("(each host's heartbeat and backup events with its agent credential, its mirror events with its mirror credential)\n");

  const hosts = Array.from({ length: hostCount }, (_, i) => hostName(i));
  let bus: RoleBus | undefined;
  let child: ChildProcess | undefined;
  let worker: Worker | undefined;
  let beating: NodeJS.Timeout | undefined;
  const sim: SimHost[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  try {
    let t = performance.now();
    bus = await startRoleBus(hosts);
    const jsm = await jetstreamManager(bus.operator);
    console.log(`set-up: nats-server with ${hosts.length * 3 + 4} roles, streams, buckets and every durable: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    stop.throwIfAborted();

    t = performance.now();
    await pool(hosts, 32, async (host) => {
      const agent = await bus!.connect({ kind: "agent", host });
      const mirror = await bus!.connect({ kind: "mirror", host });
      const { kv } = await openBucket(agent, buckets.hosts);
      sim.push({ host, agent, mirror, hostsKv: kv, domains: Array.from({ length: domainCount }, (_, d) => ({ name: domainName(d), state: d % 10 === 9 ? "shut off" : "running", scheduled: true })) });
    });
    sim.sort((a, b) => a.host.localeCompare(b.host));
    console.log(`simulated agents: ${sim.length * 2} connections (agent + mirror per host) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    t = performance.now();
    await pool(sim, 64, beat);
    const dayStart = Date.now() - 24 * 3600_000;
    let events = 0;
    await pool(sim, 64, async (h, i) => {
      const n = await publishDay(h, i, dayStart);
      events += n;
    });
    const evtInfo = await jsm.streams.info(streams.events);
    console.log(`a day of events: ${events} in VMBS_EVT (${(evtInfo.state.bytes / MiB).toFixed(1)} MiB) and ${sim.length} heartbeats, published in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    if (evtInfo.state.messages !== events) throw new Error(`VMBS_EVT holds ${evtInfo.state.messages} messages, ${events} were published`);

    // Heartbeats go on while the services run: every host every 30 s, spread over the interval.
    let nextBeat = 0;
    let beatErrors = 0;
    beating = setInterval(() => {
      const h = sim[nextBeat++ % sim.length]!;
      beat(h).catch(() => beatErrors++);
    }, HEARTBEAT_MS / sim.length);

    // The status service, in its own process.
    // `vmbs status-service` as a fleet runs it: the status role's credential, no status page.
    const stateDir = await mkdtemp(join(tmpdir(), "vmbs-bench-fleet-"));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const seedFile = join(stateDir, "status.nk");
    await writeFile(seedFile, bus.credentialOf({ kind: "status" }).seed, { mode: 0o600 });
    const t0 = performance.now();
    child = spawn(process.execPath, [vmbs, "status-service"], {
      env: {
        ...process.env,
        NATS_URL: bus.nats.url,
        NATS_NKEY_SEED: seedFile,
        HOST_ID: "bench-status",
        VMBS_STATE_DIR: stateDir,
        LOGFILE_PATH: join(stateDir, "vmbs.log"),
        VMBS_HTTP_LISTEN: "",
        BACKUP_SCHEDULE: "0 3 * * *",
        BACKUP_RPO_MINUTES: String(26 * 60),
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let childErr = "";
    child.stderr!.on("data", (d: Buffer) => (childErr = (childErr + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) => child!.once("exit", (code, signal) => reject(new Error(`the status service exited (${code ?? signal}): ${childErr}`))));
    const pid = child.pid!;
    const rss: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const mb = await rssMb(pid);
        if (mb > 0) rss.push(mb);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const ready = await Promise.race([
      exited,
      new Promise<number>((resolve) => {
        let out = "";
        child!.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes('"status service ready"')) resolve(performance.now() - t0);
          out = out.slice(-1000);
        });
      }),
    ]);

    // Caught up: its durable drained (every event folded and stored), and the last host's domains all known.
    const client = await bus.connect({ kind: "operator" });
    const askHost = async (host: string): Promise<FleetStatus> => {
      const reply = await client.request(subjects.svc.statusEndpoint("fleet"), JSON.stringify({ host }), { timeout: 30_000 });
      const error = reply.headers?.get("Nats-Service-Error");
      if (error) throw new Error(`the status service answered for ${host} with an error: ${error}`);
      return reply.json<FleetStatus>();
    };
    const last = sim.at(-1)!.host;
    for (;;) {
      stop.throwIfAborted();
      const c = await jsm.consumers.info(streams.events, statusDurable.durable);
      if (c.num_pending === 0 && c.num_ack_pending === 0) {
        const h = (await Promise.race([exited, askHost(last)])).hosts[0];
        if (h?.alive && h.domains.length === domainCount && h.domains.every((d) => d.lastBackup && d.mirror)) break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const caughtUp = performance.now() - t0;
    console.log(`status service: ready ${(ready / 1000).toFixed(1)} s after its start, caught up (${events} events folded, ${sim.length} heartbeats) after ${(caughtUp / 1000).toFixed(1)} s\n`);

    // Replies, one at a time (latency, not throughput): the whole fleet, then one host (each a different one), asked
    // from a worker thread of their own (see fleet-requests.ts).
    const job: FleetRequestsJob = { url: bus.nats.url, ...bus.credentialOf({ kind: "operator" }), fleetRequests: requests, hosts: sim.map((h) => h.host), hostRequests: requests * 10 };
    worker = new Worker(new URL("./fleet-requests.js", import.meta.url), { workerData: job });
    const asked = await Promise.race([
      exited,
      new Promise<never>((_, reject) => stop.addEventListener("abort", () => reject(stop.reason as Error), { once: true })),
      new Promise<FleetRequestsResult>((resolve, reject) => {
        worker!.once("message", resolve);
        worker!.once("error", reject);
        worker!.once("exit", (code) => reject(new Error(`the request worker exited (${code}) without its figures`)));
      }),
    ]);
    for (const r of asked.fleet) {
      if (r.hosts !== hostCount || r.domains !== hostCount * domainCount) throw new Error(`a fleet reply held ${r.hosts} hosts and ${r.domains} domains`);
    }
    for (const r of asked.host) if (r.domains !== domainCount) throw new Error(`a reply for one host held ${r.domains} domains`);
    const fleetMs = asked.fleet.map((r) => r.ms);
    const hostMs = asked.host.map((r) => r.ms);
    const { bytes: fleetBytes, parts: fleetParts } = asked.fleet[0]!;
    sampling = false;
    await sampler;
    const rssPeak = Math.max(...rss);
    const rssEnd = rss.at(-1) ?? NaN;

    // The scheduler: one slot, every scheduled domain of every registered host.
    // What the scheduler's cron task runs at a BACKUP_SCHEDULE slot (startScheduler wires it), fired directly.
    const scheduler = createSlotPublisher({ nc: await bus.connect({ kind: "scheduler" }), logger: createLogger({ name: "bench-scheduler", level: "warn", stream: process.stderr }) });
    const slot = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const s0 = performance.now();
    const slotResult = await scheduler.fireSlot(slot);
    const slotMs = performance.now() - s0;
    const cmdInfo = await jsm.streams.info(streams.commands);
    if (slotResult.published !== hostCount * domainCount || cmdInfo.state.messages !== hostCount * domainCount) {
      throw new Error(`the slot published ${JSON.stringify(slotResult)}; VMBS_CMD holds ${cmdInfo.state.messages}`);
    }
    if (beatErrors > 0) console.log(`(${beatErrors} heartbeat(s) failed during the run)`);

    // Where a slow whole-fleet reply spent its time: waiting for the parts, or decoding them.
    const slowest = asked.fleet.map((r, i) => ({ i, ...r })).sort((x, y) => y.ms - x.ms).slice(0, 3);
    const decodeMs = asked.fleet.map((r) => r.decodeMs).sort((a, b) => a - b);
    fleetMs.sort((a, b) => a - b);
    hostMs.sort((a, b) => a - b);
    const rows: [string, string, number, number, string][] = [
      [`fleet reply (${requests}, ${(fleetBytes / MiB).toFixed(1)} MiB in ${fleetParts})`, `p50 ${percentile(fleetMs, 50).toFixed(1)} ms`, percentile(fleetMs, 99), TARGETS.fleetP99Ms, "ms"],
      [`one host reply (${requests * 10})`, `p50 ${percentile(hostMs, 50).toFixed(1)} ms`, percentile(hostMs, 99), TARGETS.hostP99Ms, "ms"],
      [`scheduler slot (${slotResult.published} cmds)`, "", slotMs, TARGETS.slotMs, "ms"],
      ["status service RSS (peak)", `end ${rssEnd.toFixed(0)} MB`, rssPeak, TARGETS.rssMb, "MB"],
    ];
    console.log(`${"measure".padEnd(34)}${"".padEnd(16)}${"p99 / value".padStart(14)}${"target".padStart(12)}  verdict`);
    const missed: string[] = [];
    for (const [what, extra, value, target, unit] of rows) {
      const met = value <= target;
      if (!met) missed.push(what);
      console.log(`${what.padEnd(34)}${extra.padEnd(16)}${`${value.toFixed(unit === "MB" ? 0 : 1)} ${unit}`.padStart(14)}${`≤ ${target} ${unit}`.padStart(12)}  ${met ? "MET" : "NOT MET"}`);
    }
    console.log(`\nfleet reply, of which decoding the parts: p50 ${percentile(decodeMs, 50).toFixed(1)} ms, p99 ${percentile(decodeMs, 99).toFixed(1)} ms`);
    console.log(`fleet reply, the slowest: ${slowest.map((x) => `#${x.i + 1} ${x.ms.toFixed(1)} ms (decoding ${x.decodeMs.toFixed(1)})`).join(", ")}`);
    if (missed.length > 0) throw new Error(`target(s) missed: ${missed.join(", ")}`);
  } finally {
    clearInterval(beating);
    await worker?.terminate();
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      const killer = setTimeout(() => child!.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(killer);
    }
    await bus?.stop();
    for (const cleanup of cleanups) await cleanup();
  }
}

runBench("fleet-scale", main);

/**
 * The fleet bench's status requests, run in a worker thread of its own (`new Worker(this file, { workerData })`):
 * its own NATS connection, event loop and heap, as `vmbs status` is a process of its own. In the bench's main
 * thread, beside the 1 000 simulated agents' connections, its garbage collection stretched a few replies by
 * 100–300 ms, which measured the simulation, not the status service.
 */
import { parentPort, workerData } from "node:worker_threads";
import { connectBus } from "@vmbs/bus";
import { subjects, type FleetStatus } from "@vmbs/contracts";

export interface FleetRequestsJob {
  url: string;
  /** The operator's credential. */
  seed: string;
  inboxPrefix: string;
  /** Whole-fleet requests, one at a time. */
  fleetRequests: number;
  /** One-host requests, one at a time, each for the next of these hosts (round robin). */
  hosts: string[];
  hostRequests: number;
}

/** One reply as a client gets it: every part asked for and decoded. */
export interface TimedReply {
  ms: number;
  /** Of `ms`, decoding the parts (the rest is waiting for them). */
  decodeMs: number;
  bytes: number;
  parts: number;
  hosts: number;
  domains: number;
}

export interface FleetRequestsResult {
  fleet: TimedReply[];
  host: TimedReply[];
}

/** One request, and the parts that follow when the reply was cut to fit a message (as `vmbs status` asks). */
async function ask(nc: Awaited<ReturnType<typeof connectBus>>, filter: { host?: string }): Promise<TimedReply> {
  const s = performance.now();
  const r: TimedReply = { ms: 0, decodeMs: 0, bytes: 0, parts: 0, hosts: 0, domains: 0 };
  for (let after: string | undefined; ; ) {
    const request = { ...filter, ...(after ? { after } : {}) };
    const reply = await nc.request(subjects.svc.statusEndpoint("fleet"), JSON.stringify(request), { timeout: 30_000 });
    const error = reply.headers?.get("Nats-Service-Error");
    if (error) throw new Error(`the status service answered ${JSON.stringify(request)} with an error: ${error}`);
    const d0 = performance.now();
    const part = reply.json<FleetStatus>();
    r.decodeMs += performance.now() - d0;
    r.bytes += reply.data.length;
    r.parts++;
    r.hosts += part.hosts.length;
    r.domains += part.hosts.reduce((n, h) => n + h.domains.length, 0);
    if (!part.next || part.hosts.length === 0) break;
    after = part.next;
  }
  r.ms = performance.now() - s;
  return r;
}

async function run(job: FleetRequestsJob): Promise<FleetRequestsResult> {
  const nc = await connectBus(job.url, "bench-fleet-requests", { nkeySeed: job.seed, inboxPrefix: job.inboxPrefix });
  try {
    const result: FleetRequestsResult = { fleet: [], host: [] };
    for (let i = 0; i < job.fleetRequests; i++) result.fleet.push(await ask(nc, {}));
    for (let i = 0; i < job.hostRequests; i++) result.host.push(await ask(nc, { host: job.hosts[(i * 7) % job.hosts.length]! }));
    return result;
  } finally {
    await nc.close();
  }
}

// A failure rejects unhandled: the worker ends with it as its `error` event.
if (parentPort) {
  const port = parentPort;
  void run(workerData as FleetRequestsJob).then((result) => port.postMessage(result));
}

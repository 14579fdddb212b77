/**
 * Throughput of a restore through the restore service versus a bare virtnbdrestore of the same chain.
 *
 *   node bench/dist/restore-overhead.js [--rounds N, default 4]     (or `npm run bench:restore`)
 *
 * One lab domain (1 GiB disk): a full with 512 MiB written and an incremental with 64 MiB more, made with bare
 * virtnbdbackup. Each round times one bare `virtnbdrestore -i chain -o dir` and one `run` request to the restore
 * service (as a new, undefined domain: `"define": false`), which includes reading the set, the lease, the XML
 * rewrite and moving the image into place. The order swaps every round. Prints the ratio of the totals; exits 0
 * whatever it is.
 */
import { rm } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { positiveIntFlag } from "./cli-args.js";
import { connectBus, ensureStreams, type NatsConnection } from "@vmbs/bus";
import { loadConfig } from "@vmbs/config";
import { subjects } from "@vmbs/contracts";
import { createLab, startTestNats, waitFor, type Lab, type TestNats } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { startRestoreService, type RestoreServiceHandle } from "@vmbs/restore";
import { runBench } from "./run-bench.js";

const HOST = "bench";
const TARGET = 1.05;
const MiB = 1024 * 1024;
const TIMEOUT_MS = 30 * 60_000;

async function main(stop: AbortSignal): Promise<void> {
  const rounds = positiveIntFlag(process.argv.slice(2), "rounds", 4);
  const version = (await execa("virtnbdrestore", ["--version"], { stdin: "ignore" })).stdout.trim();
  console.log(`machine: nproc=${availableParallelism()} mem=${(totalmem() / 2 ** 30).toFixed(1)}GiB node=${process.version} virtnbdrestore=${version}`);
  console.log(`workload: restore of a 1024 MiB disk, full with 512 MiB + incremental with 64 MiB, ${rounds} round(s)\n`);
  let lab: Lab | undefined;
  let nats: TestNats | undefined;
  let nc: NatsConnection | undefined;
  let service: RestoreServiceHandle | undefined;
  try {
    lab = await createLab();
    const dom = await lab.createDomain({ sizeMiB: 1024 });
    const root = await lab.tempDir("bench-restore-");
    const chain = join(root, dom.name);
    // A guest write can leave libvirt reporting a job for a moment, which virtnbdbackup refuses to start beside.
    const noJob = () => waitFor(async () => /Job type:\s+None/.test((await execa("virsh", ["-c", lab!.uri, "domjobinfo", "--domain", dom.name])).stdout), { timeoutMs: 60_000, what: "no libvirt job" });
    const backup = async (level: string) =>
      (await noJob(), execa("virtnbdbackup", ["--domain", dom.name, "--level", level, "--output", chain, "--uri", lab!.uri, "--noprogress"], { stdin: "ignore", cancelSignal: stop, killSignal: "SIGINT", timeout: TIMEOUT_MS }));
    await lab.writeGuest(dom.name, { offset: 0, length: 512 * MiB, pattern: 0xa5 });
    await backup("full");
    await lab.writeGuest(dom.name, { offset: 600 * MiB, length: 64 * MiB, pattern: 0x5a });
    await backup("inc");

    nats = await startTestNats();
    nc = await connectBus(nats.url, "bench");
    await ensureStreams(nc);
    service = await startRestoreService({ config: loadConfig({ LOCAL_BACKUP_PATH: root, HOST_ID: HOST, LIBVIRT_URI: lab.uri }), nc, logger: createLogger({ name: "bench", level: "silent" }) });

    const timeBare = async (out: string): Promise<number> => {
      const t0 = performance.now();
      await execa("virtnbdrestore", ["--input", chain, "--output", out, "--noprogress"], { stdin: "ignore", cancelSignal: stop, timeout: TIMEOUT_MS });
      return performance.now() - t0;
    };
    const timeService = async (out: string, round: number): Promise<number> => {
      const t0 = performance.now();
      const msg = await nc!.request(subjects.svc.restoreEndpoint(HOST, "run"), JSON.stringify({ domain: dom.name, as: `${dom.name}-bench${round}`, targetDir: out, define: false }), { timeout: TIMEOUT_MS });
      const ms = performance.now() - t0;
      const error = msg.headers?.get("Nats-Service-Error");
      if (error) throw new Error(`restore service: ${error}`);
      return ms;
    };

    const rows: { round: number; first: string; bareMs: number; serviceMs: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      const first = r % 2 === 0 ? "bare" : "service";
      let bareMs = NaN;
      let serviceMs = NaN;
      for (const which of first === "bare" ? ["bare", "service"] : ["service", "bare"]) {
        stop.throwIfAborted();
        const out = await lab.tempDir("bench-out-");
        await execa("sync", { stdin: "ignore" });
        if (which === "bare") bareMs = await timeBare(out);
        else serviceMs = await timeService(out, r);
        await rm(out, { recursive: true, force: true });
      }
      rows.push({ round: r + 1, first, bareMs, serviceMs });
      process.stderr.write(`round ${r + 1}/${rounds}: bare ${bareMs.toFixed(0)} ms, service ${serviceMs.toFixed(0)} ms\n`);
    }
    for (const x of rows) console.log(`round ${x.round} (${x.first} first): bare ${x.bareMs.toFixed(0)} ms, service ${x.serviceMs.toFixed(0)} ms, ratio ${(x.serviceMs / x.bareMs).toFixed(3)}`);
    const ratio = rows.reduce((s, x) => s + x.serviceMs, 0) / rows.reduce((s, x) => s + x.bareMs, 0);
    console.log(`\nservice / bare, total of ${rounds} rounds: ${ratio.toFixed(3)}   target: <= ${TARGET.toFixed(2)}   ${ratio <= TARGET ? "MET" : "NOT MET"}`);
  } finally {
    await service?.stop().catch((err: unknown) => console.error("service stop:", err));
    await nc?.close().catch((err: unknown) => console.error("nats close:", err));
    await nats?.stop().catch((err: unknown) => console.error("nats-server stop:", err));
    await lab?.cleanup();
  }
}

runBench("restore-overhead", main);

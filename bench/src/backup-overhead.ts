/**
 * Overhead of a backup through the bus versus a bare virtnbdbackup run, measured side by side.
 *
 *   node bench/dist/backup-overhead.js [--rounds N, default 10]    (or `npm run bench`)
 *   node bench/dist/backup-overhead.js --control                    (bare against bare: the bench's noise floor here)
 *   VMBS_BENCH_LOG=/tmp/agent.log …                                 (the agent's debug log, to see where time goes)
 *
 * Two equal lab domains (1 GiB disk, 512 MiB written). Each round times one bare
 * `virtnbdbackup --level full` on one domain and one full backup through the bus on the other
 * (publish on vmbs.cmd.backup.bench → the matching `completed` event), both into empty folders.
 * The bus time holds all the agent does around the engine (delivery, chain checks, verification).
 * The domains and the order swap every round to cancel placement and cache effects.
 * Prints the per-round bus/bare ratios, the ratio of the totals (the figure to read) and the median over pairs of
 * rounds (one of each order, so the second-run penalty cancels within each pair); exits 0 whatever the ratio.
 * `--control` runs bare virtnbdbackup in the bus's place: the ratios it prints are what chance alone gives here.
 */
import { randomUUID } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { PassThrough } from "node:stream";
import { execa } from "execa";
import { positiveIntFlag } from "./cli-args.js";
import { startBackupAgent, type BackupAgentHandle } from "@vmbs/backup-agent";
import { connectBus, publishJson, type NatsConnection } from "@vmbs/bus";
import { loadConfig } from "@vmbs/config";
import { backupEventSchema, subjects, type BackupEvent } from "@vmbs/contracts";
import { createLab, ignoredListExcept, startTestNats, type Lab, type TestNats } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { runBench } from "./run-bench.js";

const HOST = "bench";
/** Publish → `completed` against bare virtnbdbackup, full and incremental alike (issue 15). */
const TARGET = 1.02;
const DISK_MIB = 1024;
const WRITTEN_BYTES = 512 * 1024 * 1024;
const BACKUP_TIMEOUT_MS = 30 * 60_000;

interface Round { round: number; first: "bare" | "bus"; bareMs: number; busMs: number; toStartMs: number; incBareMs: number; incBusMs: number; ownMs: number; incOwnMs: number }
/** One backup through the bus: publish → `completed`, publish → `started`, and that time minus the engine's run. */
interface BusTiming { ms: number; toStartMs: number; ownMs: number }
/** Written between the full and the incremental of a round: a day of guest changes, for the steady state. */
const INC_WRITTEN_BYTES = 64 * 1024 * 1024;

/** Empties a folder, keeping the folder itself. */
async function emptyDir(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Rounds 1+2, 3+4, …: each pair holds one round of each order, so the penalty of coming second in a round
 * falls on both paths once. The median of the pairs' bus/bare ratios is robust to one disturbed round.
 */
function pairMedian(results: readonly Round[], bus: "busMs" | "incBusMs", bare: "bareMs" | "incBareMs"): number {
  const ratios: number[] = [];
  for (let i = 0; i + 1 < results.length; i += 2) ratios.push((results[i]![bus] + results[i + 1]![bus]) / (results[i]![bare] + results[i + 1]![bare]));
  return ratios.length > 0 ? median(ratios) : NaN;
}

async function main(stop: AbortSignal): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = positiveIntFlag(argv, "rounds", 10);
  const control = argv.includes("--control");
  const version = (await execa("virtnbdbackup", ["--version"], { stdin: "ignore" })).stdout.trim();
  console.log(`machine: nproc=${availableParallelism()} mem=${(totalmem() / 2 ** 30).toFixed(1)}GiB node=${process.version} virtnbdbackup=${version}`);
  console.log(`workload: full backup of a ${DISK_MIB} MiB disk with ${WRITTEN_BYTES / 2 ** 20} MiB written, ${rounds} round(s)`);
  console.log(control ? "CONTROL RUN: the \"bus\" column is bare virtnbdbackup too; its ratios are the noise floor\n" : "");

  let lab: Lab | undefined;
  let nats: TestNats | undefined;
  let nc: NatsConnection | undefined;
  let agent: BackupAgentHandle | undefined;
  try {
    lab = await createLab();
    const domains: string[] = [];
    for (let i = 0; i < 2; i++) {
      stop.throwIfAborted();
      const { name } = await lab.createDomain({ sizeMiB: DISK_MIB });
      await lab.writeGuest(name, { offset: 0, length: WRITTEN_BYTES, pattern: 0xa5 });
      domains.push(name);
    }
    stop.throwIfAborted();
    process.stderr.write(`lab domains: ${domains.join(", ")}\n`);

    nats = await startTestNats();
    nc = await connectBus(nats.url, "bench");
    const backupRoot = await lab.tempDir("bench-bus-");
    const config = loadConfig({ LOCAL_BACKUP_PATH: backupRoot, HOST_ID: HOST, VM_IGNORED_LIST: await ignoredListExcept(lab.uri, domains) });
    // VMBS_BENCH_LOG=FILE keeps the agent's debug log there (where the time goes); silent otherwise.
    const logFile = process.env.VMBS_BENCH_LOG;
    const logger = createLogger({ name: "bench", level: logFile ? "debug" : "silent", ...(logFile ? { file: logFile, stream: new PassThrough().resume() } : {}) });
    agent = await startBackupAgent({ config, nc, logger });

    // requestId → what to do with each of its events, stamped with its arrival time.
    const waiters = new Map<string, (e: BackupEvent, at: number) => void>();
    nc.subscribe(subjects.evt.backupAll(HOST), {
      callback: (err, msg) => {
        const at = performance.now();
        if (err) return;
        let parsed;
        try { parsed = backupEventSchema.safeParse(msg.json()); } catch { return; }
        if (parsed.success && parsed.data.requestId) waiters.get(parsed.data.requestId)?.(parsed.data, at);
      },
    });

    const timeBus = async (domain: string, level: "full" | "inc" = "full"): Promise<BusTiming> => {
      const requestId = randomUUID();
      let startedAt = NaN;
      const signal = AbortSignal.any([stop, AbortSignal.timeout(BACKUP_TIMEOUT_MS)]);
      const outcome = new Promise<{ event: BackupEvent; at: number }>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        waiters.set(requestId, (event, at) => {
          if (event.type === "started") return void (startedAt = at);
          waiters.delete(requestId);
          signal.removeEventListener("abort", onAbort);
          resolve({ event, at });
        });
      });
      const t0 = performance.now();
      await publishJson(nc!, subjects.cmd.backup(HOST), { domain, level, requestId });
      const { event, at } = await outcome;
      if (event.type !== "completed") throw new Error(`bus backup of ${domain} failed: ${event.type === "failed" ? event.reason : event.type}`);
      const ms = at - t0;
      return { ms, toStartMs: startedAt - t0, ownMs: event.engineMs === undefined ? NaN : ms - event.engineMs };
    };

    const timeBare = async (domain: string, output: string, level: "full" | "inc" = "full"): Promise<number> => {
      const args = ["--domain", domain, "--level", level, "--output", output, "--uri", lab!.uri, "--noprogress"];
      const t0 = performance.now();
      // SIGINT lets virtnbdbackup end its libvirt backup job itself.
      const r = await execa("virtnbdbackup", args, { stdin: "ignore", cancelSignal: stop, killSignal: "SIGINT", forceKillAfterDelay: 60_000, timeout: BACKUP_TIMEOUT_MS });
      const ms = performance.now() - t0;
      if (!r.stderr.includes("Finished successfully")) throw new Error(`bare virtnbdbackup of ${domain} did not finish: ${r.stderr.slice(-500)}`);
      return ms;
    };

    const results: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      const bareDomain = domains[r % 2]!;
      const busDomain = domains[(r + 1) % 2]!;
      // Empty folders for both paths: this also drops the chains the agent's start-up checks made.
      await emptyDir(backupRoot);
      const bareDir = await lab.tempDir("bench-bare-");
      const first = r % 2 === 0 ? "bare" : "bus";
      const controlDir = control ? await lab.tempDir("bench-control-") : "";
      const timeBusSlot = async (level: "full" | "inc"): Promise<BusTiming> =>
        control ? { ms: await timeBare(busDomain, controlDir, level), toStartMs: 0, ownMs: 0 } : timeBus(busDomain, level);
      let bareMs = NaN;
      let bus: BusTiming = { ms: NaN, toStartMs: NaN, ownMs: NaN };
      for (const which of first === "bare" ? ["bare", "bus"] : ["bus", "bare"]) {
        stop.throwIfAborted();
        // Flush the previous run's 512 MiB of dirty pages first: otherwise their writeback slows whichever
        // run comes second in a round (measured ~0.5 s here), whatever its path.
        await execa("sync", { stdin: "ignore" });
        if (which === "bare") bareMs = await timeBare(bareDomain, bareDir);
        else bus = await timeBusSlot("full");
      }
      // Steady state: the next day's incremental on both chains, same order.
      for (const d of domains) await lab.writeGuest(d, { offset: WRITTEN_BYTES, length: INC_WRITTEN_BYTES, pattern: 0x5a + r });
      let incBareMs = NaN;
      let incBus: BusTiming = { ms: NaN, toStartMs: NaN, ownMs: NaN };
      for (const which of first === "bare" ? ["bare", "bus"] : ["bus", "bare"]) {
        stop.throwIfAborted();
        await execa("sync", { stdin: "ignore" });
        if (which === "bare") incBareMs = await timeBare(bareDomain, bareDir, "inc");
        else incBus = await timeBusSlot("inc");
      }
      results.push({ round: r + 1, first, bareMs, busMs: bus.ms, toStartMs: bus.toStartMs, incBareMs, incBusMs: incBus.ms, ownMs: bus.ownMs, incOwnMs: incBus.ownMs });
      process.stderr.write(`round ${r + 1}/${rounds}: bare ${bareMs.toFixed(0)} ms, bus ${bus.ms.toFixed(0)} ms\n`);
      // No pile-up of 512 MiB copies.
      for (const dir of [bareDir, controlDir].filter(Boolean)) await rm(dir, { recursive: true, force: true });
    }

    const row = (...cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(6) : c.padStart(10))).join(" ");
    console.log(row("round", "first", "bare ms", "bus ms", "→started", "ratio"));
    for (const x of results) {
      console.log(row(String(x.round), x.first, x.bareMs.toFixed(0), x.busMs.toFixed(0), x.toStartMs.toFixed(0), (x.busMs / x.bareMs).toFixed(3)));
    }
    const total = (key: "busMs" | "bareMs" | "incBusMs" | "incBareMs") => results.reduce((sum, x) => sum + x[key], 0);
    // The headline is the ratio of totals: whichever run comes second in a round is slower whatever its path,
    // and with both orders equally often that effect cancels in the totals (not in a single round's ratio).
    const ratio = total("busMs") / total("bareMs");
    const perRound = results.map((x) => x.busMs / x.bareMs);
    const balanced = rounds % 2 === 0 ? "each order equally often" : "odd number of rounds: order effects do not fully cancel";
    console.log(`\nbus / bare, total of ${rounds} rounds (${balanced}): ${ratio.toFixed(3)}   target: <= ${TARGET.toFixed(2)}   ${ratio <= TARGET ? "MET" : "NOT MET"}`);
    console.log(`per-round ratios: median ${median(perRound).toFixed(3)}, min ${Math.min(...perRound).toFixed(3)}, max ${Math.max(...perRound).toFixed(3)}`);
    console.log(`median over pairs of rounds (one of each order): ${pairMedian(results, "busMs", "bareMs").toFixed(3)}`);
    console.log(`median →started: ${median(results.map((x) => x.toStartMs)).toFixed(0)} ms`);
    console.log(`\nsteady state, incremental with ${INC_WRITTEN_BYTES / 2 ** 20} MiB written (ms): ` + results.map((x) => `${x.incBareMs.toFixed(0)} bare / ${x.incBusMs.toFixed(0)} bus`).join(", "));
    const incRatio = total("incBusMs") / total("incBareMs");
    console.log(`total bus / total bare (incremental): ${incRatio.toFixed(3)}   target: <= ${TARGET.toFixed(2)}   ${incRatio <= TARGET ? "MET" : "NOT MET"}`);
    console.log(`median over pairs of rounds (incremental): ${pairMedian(results, "incBusMs", "incBareMs").toFixed(3)}`);
    console.log(`\nthe agent's own time per backup (bus ms minus the engine's run), median: full ${median(results.map((x) => x.ownMs)).toFixed(0)} ms, incremental ${median(results.map((x) => x.incOwnMs)).toFixed(0)} ms`);
    console.log("(→started: ms from publishing the command to the `started` event, i.e. before virtnbdbackup runs)");
    console.log("(own time: delivery, checks, lease, journal and events around the engine; unlike the ratios, it hardly varies run to run)");
  } finally {
    // Each step on its own, so one failure doesn't leave the rest behind.
    await agent?.stop().catch((err: unknown) => console.error("agent stop:", err));
    await nc?.close().catch((err: unknown) => console.error("nats close:", err));
    await nats?.stop().catch((err: unknown) => console.error("nats-server stop:", err));
    await lab?.cleanup();
  }
}

runBench("backup-overhead", main);

/**
 * Instant recovery against a full restore of the same checkpoint, side by side in one run.
 *
 *   node bench/dist/instant-restore.js [--rounds N, default 2] [--size-mib M, default 4096]   (or `npm run bench:instant`)
 *
 * One lab domain with a 4 GiB disk and 3 GiB written over a 3-checkpoint chain (a full with 1 GiB, two incrementals
 * with 1 GiB each, made with bare virtnbdbackup). Each round times through the restore service a `run` request (a
 * full restore as a new, undefined domain) of the newest checkpoint, then an `instant` request of the same one until
 * its reply (the new domain is then running; checked with libvirt). The restore goes first: it holds the chain lease
 * while it runs, and the instant VM holds it from its start to its finish. It then times the instant VM's
 * `instant-finish` (blockcopy onto a local image, pivot) and reports the bytes its nbdkit export read from the chain:
 * to reach the running domain, and in all once finished. Target: request → running ≤ 5 s. Exits 0 whatever it is.
 */
import { readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { positiveIntFlag } from "./cli-args.js";
import { connectBus, ensureStreams, type NatsConnection } from "@vmbs/bus";
import { loadConfig } from "@vmbs/config";
import { instantFinishReplySchema, instantRestoreReplySchema, restoreRunReplySchema, subjects, type RestoreEndpoint } from "@vmbs/contracts";
import { createLab, startTestNats, waitFor, type Lab, type TestNats } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { startRestoreService, type RestoreServiceHandle } from "@vmbs/restore";
import { exportPid, exportReadBytes } from "@vmbs/virt";
import { runBench } from "./run-bench.js";

const HOST = "bench";
const TARGET_MS = 5_000;
const MiB = 1024 * 1024;
const TIMEOUT_MS = 60 * 60_000;

const mib = (bytes: number | undefined): string => (bytes === undefined ? "?" : `${(bytes / MiB).toFixed(1)} MiB`);

async function main(stop: AbortSignal): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = positiveIntFlag(argv, "rounds", 2);
  const sizeMiB = positiveIntFlag(argv, "size-mib", 4096);
  const writeMiB = Math.floor((sizeMiB * 3) / 4 / 3);
  const nbdkit = (await execa("nbdkit", ["--version"], { stdin: "ignore" })).stdout.trim();
  console.log(`machine: nproc=${availableParallelism()} mem=${(totalmem() / 2 ** 30).toFixed(1)}GiB node=${process.version} ${nbdkit}`);
  console.log(`workload: a ${sizeMiB} MiB disk, ${3 * writeMiB} MiB written over 3 checkpoints (full + 2 incrementals of ${writeMiB} MiB each), ${rounds} round(s)\n`);
  let lab: Lab | undefined;
  let nats: TestNats | undefined;
  let nc: NatsConnection | undefined;
  let service: RestoreServiceHandle | undefined;
  const instants: string[] = [];
  try {
    lab = await createLab();
    const dom = await lab.createDomain({ sizeMiB });
    const root = await lab.tempDir("bench-instant-");
    const chain = join(root, dom.name);
    const noJob = () => waitFor(async () => /Job type:\s+None/.test((await execa("virsh", ["-c", lab!.uri, "domjobinfo", "--domain", dom.name])).stdout), { timeoutMs: 60_000, what: "no libvirt job" });
    for (const [i, level] of ["full", "inc", "inc"].entries()) {
      await lab.writeGuest(dom.name, { offset: i * writeMiB * MiB, length: writeMiB * MiB, pattern: 0xa1 + i });
      await noJob();
      await execa("virtnbdbackup", ["--domain", dom.name, "--level", level, "--output", chain, "--uri", lab.uri, "--noprogress"], { stdin: "ignore", cancelSignal: stop, killSignal: "SIGINT", timeout: TIMEOUT_MS });
      process.stderr.write(`backup ${i} (${level}) done\n`);
    }
    // The source stays defined (its folder is where new images may go) but does not compete for the CPU.
    await execa("virsh", ["-c", lab.uri, "destroy", dom.name], { stdin: "ignore", timeout: 60_000 });

    nats = await startTestNats();
    nc = await connectBus(nats.url, "bench");
    await ensureStreams(nc);
    const config = loadConfig({ LOCAL_BACKUP_PATH: root, HOST_ID: HOST, LIBVIRT_URI: lab.uri, VMBS_STATE_DIR: await lab.tempDir("bench-instant-state-") });
    service = await startRestoreService({ config, nc, logger: createLogger({ name: "bench", level: "silent" }) });
    const ask = async (endpoint: RestoreEndpoint, body: object): Promise<{ ms: number; json: unknown }> => {
      const t0 = performance.now();
      const msg = await nc!.request(subjects.svc.restoreEndpoint(HOST, endpoint), JSON.stringify(body), { timeout: TIMEOUT_MS });
      const ms = performance.now() - t0;
      const error = msg.headers?.get("Nats-Service-Error");
      if (error) throw new Error(`${endpoint}: ${error}`);
      return { ms, json: msg.json() };
    };

    const rows: { round: number; instantMs: number; restoreMs: number; finishMs: number; readToRun?: number; readInAll?: number; exportPeakRss?: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      let exportPids: number[] = [];
      const row = { round: r + 1, instantMs: NaN, restoreMs: NaN, finishMs: NaN } as (typeof rows)[number];
      const out = await lab.tempDir("bench-instant-out-");
      await execa("virsh", ["-c", lab.uri, "pool-create-as", `vmbs-bench-${r}`, "dir", "--target", out], { stdin: "ignore", timeout: 60_000 });
      const as = `${dom.name}-i${r}`;
      // The full restore first: it takes the chain lease for its run, which the instant VM then holds until its finish.
      for (const which of ["restore", "instant"]) {
        stop.throwIfAborted();
        await execa("sync", { stdin: "ignore" });
        if (which === "instant") {
          const { ms, json } = await ask("instant", { domain: dom.name, as, targetDir: out });
          instants.push(as);
          row.instantMs = ms;
          const state = (await execa("virsh", ["-c", lab.uri, "domstate", as], { stdin: "ignore", timeout: 60_000 })).stdout.trim();
          if (state !== "running") throw new Error(`${as} is ${state} after the instant reply`);
          const disk = instantRestoreReplySchema.parse(json).disks[0]!;
          const pid = await exportPid({ socket: disk.socket, pidFile: disk.socket.replace(/\.sock$/, ".pid") });
          row.readToRun = pid === undefined ? undefined : await exportReadBytes(pid);
          exportPids = pid === undefined ? [] : [pid];
        } else {
          const { ms, json } = await ask("run", { domain: dom.name, as: `${dom.name}-r${r}`, targetDir: out, define: false });
          row.restoreMs = ms;
          for (const image of restoreRunReplySchema.parse(json).images) await rm(image, { force: true });
          await rm(join(out, `${dom.name}-r${r}.xml`), { force: true });
        }
      }
      await execa("sync", { stdin: "ignore" });
      // nbdkit's memory while the copy reads the whole chain through it, sampled until it is stopped.
      const exportRss = async (): Promise<number> => {
        let peak = 0;
        for (const pid of exportPids) {
          const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""));
          if (m) peak += Number(m[1]) * 1024;
        }
        return peak;
      };
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          row.exportPeakRss = Math.max(row.exportPeakRss ?? 0, await exportRss());
          await sleep(100);
        }
      })();
      const finish = await ask("instant-finish", { domain: as, consent: true }).finally(() => (sampling = false));
      await sampler;
      row.finishMs = finish.ms;
      row.readInAll = instantFinishReplySchema.parse(finish.json).chainReadBytes;
      rows.push(row);
      process.stderr.write(`round ${r + 1}/${rounds}: instant ${row.instantMs.toFixed(0)} ms, restore ${row.restoreMs.toFixed(0)} ms, finish ${row.finishMs.toFixed(0)} ms\n`);
      await execa("virsh", ["-c", lab.uri, "destroy", as], { stdin: "ignore", timeout: 60_000, reject: false });
      await execa("virsh", ["-c", lab.uri, "undefine", as], { stdin: "ignore", timeout: 60_000, reject: false });
      instants.splice(instants.indexOf(as), 1);
      await execa("virsh", ["-c", lab.uri, "pool-destroy", `vmbs-bench-${r}`], { stdin: "ignore", timeout: 60_000, reject: false });
      await rm(out, { recursive: true, force: true });
    }
    const chainBytes = (await execa("du", ["-sb", "--apparent-size", chain], { stdin: "ignore" })).stdout.split("\t")[0];
    console.log(`chain: ${mib(Number(chainBytes))} in ${chain}\n`);
    console.log("round  instant→running   full restore   ratio   finish (copy+pivot)   chain read to run   chain read in all   nbdkit RSS peak");
    for (const x of rows)
      console.log(`${String(x.round).padEnd(6)} ${`${x.instantMs.toFixed(0)} ms`.padStart(15)}   ${`${x.restoreMs.toFixed(0)} ms`.padStart(12)}   ${(x.restoreMs / x.instantMs).toFixed(1).padStart(5)}   ${`${x.finishMs.toFixed(0)} ms`.padStart(19)}   ${mib(x.readToRun).padStart(17)}   ${mib(x.readInAll).padStart(17)}   ${mib(x.exportPeakRss).padStart(15)}`);
    const worst = Math.max(...rows.map((x) => x.instantMs));
    console.log(`\nrequest → running domain, worst of ${rounds}: ${worst.toFixed(0)} ms   target: <= ${TARGET_MS} ms   ${worst <= TARGET_MS ? "MET" : "NOT MET"}`);
  } finally {
    for (const as of instants) {
      await execa("virsh", ["-c", lab!.uri, "destroy", as], { stdin: "ignore", timeout: 60_000, reject: false });
      await nc?.request(subjects.svc.restoreEndpoint(HOST, "instant-abandon"), JSON.stringify({ domain: as, consent: true }), { timeout: 120_000 }).catch(() => undefined);
    }
    await service?.stop().catch((err: unknown) => console.error("service stop:", err));
    await nc?.close().catch((err: unknown) => console.error("nats close:", err));
    await nats?.stop().catch((err: unknown) => console.error("nats-server stop:", err));
    await lab?.cleanup();
  }
}

runBench("instant-restore", main);

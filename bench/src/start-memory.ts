/**
 * Memory of the all-in-one `vmbs start` with every service (scheduler, agent, restore service with drills, mirror,
 * notifier), idle and during backups, against the targets (≤ 150 MB RSS idle, ≤ 250 MB during a backup).
 *
 *   node bench/dist/start-memory.js [--backups N, default 2]     (or `npm run bench:memory`)
 *
 * One lab domain (1 GiB disk, 512 MiB written). `vmbs start` runs as a user runs it (its own nats-server and
 * redis-server, the mirror to a local folder, the notifier to a local HTTP receiver); its start-up check makes the
 * first full backup, then N full backups are asked for with `vmbs backup`, each followed by the mirror's copy.
 * The RSS of the node process (VmRSS) is sampled every 100 ms; the whole process tree (libvirt bridge,
 * nats-server, redis-server, virtnbdbackup, rsync) is printed beside it. Exits 0 whatever the figures are.
 */
import { createServer } from "node:http";
import { readdir, readFile } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { createLab, vmbsProcessEnv, waitFor, type Lab } from "@vmbs/lab";
import { positiveIntFlag } from "./cli-args.js";
import { runBench } from "./run-bench.js";

const MiB = 1024 * 1024;
const IDLE_TARGET_MB = 150;
const BACKUP_TARGET_MB = 250;
const vmbs = fileURLToPath(new URL("../../cli/dist/main.js", import.meta.url));

/** Resident set size in MB of `pid` (VmRSS), 0 once it is gone. */
async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** `pid` and its descendants (from /proc/<pid>/stat's ppid field). */
async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  return tree;
}

interface Sample {
  node: number;
  tree: number;
}

async function sample(pid: number): Promise<Sample> {
  const tree = await processTree(pid);
  const sizes = await Promise.all(tree.map(rssMb));
  return { node: sizes[0]!, tree: sizes.reduce((a, b) => a + b, 0) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const mb = (x: number): string => `${x.toFixed(0)} MB`;

async function main(stop: AbortSignal): Promise<void> {
  const backups = positiveIntFlag(process.argv.slice(2), "backups", 2);
  console.log(`machine: nproc=${availableParallelism()} mem=${(totalmem() / 2 ** 30).toFixed(1)}GiB node=${process.version}`);
  console.log(`workload: vmbs start with every service; 1 GiB disk with 512 MiB written; start-up full + ${backups} full backup(s), each mirrored\n`);
  let lab: Lab | undefined;
  let alerts = 0;
  const receiver = createServer((req, res) => {
    alerts++;
    req.resume();
    res.end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  let stack: ReturnType<typeof execa> | undefined;
  try {
    lab = await createLab();
    // The environment first: it ignores every domain defined so far, the bench's own comes after.
    const env = {
      ...(await vmbsProcessEnv(lab, "benchmem")),
      RSYNC_BACKUP_PATH: await lab.tempDir("bench-mirror-"),
      NOTIFY_URLS: `json://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`,
      LOG_LEVEL: "info",
    };
    const dom = await lab.createDomain({ sizeMiB: 1024 });
    await lab.writeGuest(dom.name, { offset: 0, length: 512 * MiB, pattern: 0x3c });
    // Run as `vmbs start` runs: the executable itself, so its shebang's Node flags apply (cli/src/node-flags.ts).
    stack = execa(vmbs, ["start"], { env, reject: false, stdin: "ignore", cancelSignal: stop, forceKillAfterDelay: 20_000 });
    const pid = stack.pid!;
    const samples: (Sample & { at: number })[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push({ ...(await sample(pid)), at: Date.now() });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const backup = async (level?: string) => {
      const r = await execa("node", [vmbs, "backup", "--domain", dom.name, ...(level ? ["--level", level] : []), "--timeout", "600"], { env, reject: false, cancelSignal: stop });
      // No outcome on stdout: the stack is not up yet.
      return r.stdout.trim() === "" ? undefined : r;
    };
    const succeeded = (r: Awaited<ReturnType<typeof backup>>): void => {
      if (r?.exitCode !== 0) throw new Error(`backup failed: ${r?.stdout.trim().split("\n").at(-1) ?? "no outcome"}`);
    };

    // The start-up check makes the first full backup; the stack accepts commands once it is up.
    const t0 = Date.now();
    succeeded(await waitFor(() => backup(), { timeoutMs: 600_000, intervalMs: 1_000, what: "the stack to accept commands" }));
    for (let i = 0; i < backups; i++) {
      stop.throwIfAborted();
      succeeded(await backup("full"));
    }
    const backupsDone = Date.now();
    // Idle: after the mirror's copy and the notifier's queue settled, 20 s of nothing to do.
    await new Promise((r) => setTimeout(r, 30_000));
    const idleFrom = Date.now() - 20_000;
    sampling = false;
    await sampler;

    const during = samples.filter((s) => s.at >= t0 && s.at <= backupsDone);
    const idle = samples.filter((s) => s.at >= idleFrom);
    const peakNode = Math.max(...during.map((s) => s.node));
    const peakTree = Math.max(...during.map((s) => s.tree));
    const idleNode = median(idle.map((s) => s.node));
    const idleTree = median(idle.map((s) => s.tree));
    console.log(`samples: ${during.length} during the backups (${((backupsDone - t0) / 1000).toFixed(0)} s), ${idle.length} idle; ${alerts} alert(s) received`);
    console.log(`idle   (median): vmbs start ${mb(idleNode)}   whole tree ${mb(idleTree)}   target ≤ ${IDLE_TARGET_MB} MB: ratio ${(idleNode / IDLE_TARGET_MB).toFixed(2)} ${idleNode <= IDLE_TARGET_MB ? "MET" : "NOT MET"}`);
    console.log(`backup (peak)  : vmbs start ${mb(peakNode)}   whole tree ${mb(peakTree)}   target ≤ ${BACKUP_TARGET_MB} MB: ratio ${(peakNode / BACKUP_TARGET_MB).toFixed(2)} ${peakNode <= BACKUP_TARGET_MB ? "MET" : "NOT MET"}`);
  } finally {
    stack?.kill("SIGTERM");
    await stack?.catch(() => undefined);
    receiver.close();
    await lab?.cleanup();
  }
}

runBench("start-memory", main);

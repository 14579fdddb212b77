import { chmod, chown, lstat, readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { VmbsError } from "@vmbs/contracts";

/*
 * One disk of a backup chain served read-only over NBD on a unix socket (nbdkit with chain-export-plugin.py), so
 * that QEMU can run a VM on a qcow2 overlay whose backing file is the export. nbdkit forks into the background
 * once its socket listens, so its exit is the readiness check; it outlives the service that started it (a VM
 * reads from it), and is found again through its pid file.
 */

const PLUGIN = fileURLToPath(new URL("../nbdkit/chain-export-plugin.py", import.meta.url));

/** Mapping the frames of a large chain takes a few seconds; more means something hangs. */
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 10_000;
const PID_FILE_WAIT_MS = 10_000;

/** The accounts libvirt runs QEMU as (Debian: libvirt-qemu, Fedora/RHEL: qemu); their group may open the socket. */
const QEMU_ACCOUNTS = ["libvirt-qemu", "qemu"];

/** nbdkit would not serve the chain (a compressed stream, a broken file, nbdkit or its python plugin missing). */
export class ChainExportError extends VmbsError {
  constructor(message: string, readonly compressed = false) {
    super(compressed ? "refused" : "failed", message);
  }
}

export interface ChainExport {
  /** Data files of one disk: the full backup first, then each incremental or differential, in chain order. */
  files: readonly string[];
  /** The unix socket to listen on (at most 107 bytes, the kernel's limit). */
  socket: string;
  /** Where nbdkit writes its pid. */
  pidFile: string;
}

/** Starts serving; resolves once the socket listens and QEMU's account may connect to it. Returns nbdkit's pid. */
export async function serveChainExport(e: ChainExport): Promise<number> {
  if (Buffer.byteLength(e.socket) > 107) throw new ChainExportError(`socket path ${e.socket} is longer than a unix socket may be (107 bytes)`);
  await rm(e.socket, { force: true });
  const args = ["--readonly", "--unix", e.socket, "--pidfile", e.pidFile, "python", PLUGIN, ...e.files.map((f) => `file=${f}`)];
  const run = await execa("nbdkit", args, { reject: false, stdin: "ignore", timeout: START_TIMEOUT_MS });
  if (run.failed) {
    // The plugin's refusal is a Python exception: its last line says why, the traceback above it does not.
    const lines = String(run.stderr || run.message).trim().split("\n");
    const why = (lines.findLast((l) => /Error: /.test(l)) ?? lines.at(-1) ?? "").replace(/^.*?(\w*Error): /, "").trim();
    if (/is compressed/.test(why)) throw new ChainExportError(`${why.replace(/: a compressed chain.*$/, "")}: a compressed chain (virtnbdbackup --compress) cannot be served for an instant recovery; restore it instead`, true);
    throw new ChainExportError(`nbdkit could not serve ${e.files.at(-1)}: ${why}`);
  }
  // The parent exits right after its fork; the child writes the pid file a moment later (seconds on a busy host).
  let pid = await exportPid(e);
  for (const deadline = Date.now() + PID_FILE_WAIT_MS; pid === undefined && Date.now() < deadline; pid = await exportPid(e)) await sleep(50);
  if (pid === undefined) throw new ChainExportError(`nbdkit for ${e.socket} started but is not running`);
  const group = await qemuGroup();
  // Connecting needs write permission on the socket: root and QEMU's group only.
  if (group !== undefined) await chown(e.socket, 0, group);
  await chmod(e.socket, 0o660);
  return pid;
}

/** The pid of the nbdkit serving `e` when it still runs (its pid file names a live nbdkit with this socket). */
export async function exportPid(e: Pick<ChainExport, "socket" | "pidFile">): Promise<number | undefined> {
  const pid = Number((await readFile(e.pidFile, "utf8").catch(() => "")).trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  // A reused pid is some other process: only an nbdkit started with this socket is ours.
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
  if (!cmdline[0]?.endsWith("nbdkit") || !cmdline.includes(e.socket)) return undefined;
  const socketThere = await lstat(e.socket).then((s) => s.isSocket(), () => false);
  return socketThere ? pid : undefined;
}

/** Bytes the nbdkit process read so far (/proc/<pid>/io `rchar`: the chain's data read to serve it). */
export async function exportReadBytes(pid: number): Promise<number | undefined> {
  const io = await readFile(`/proc/${pid}/io`, "utf8").catch(() => "");
  const m = /^rchar:\s+(\d+)/m.exec(io);
  return m ? Number(m[1]) : undefined;
}

/** Stops the export (SIGTERM, SIGKILL after 10 s) and removes its socket and pid file. A no-op when it does not run. */
export async function stopChainExport(e: Pick<ChainExport, "socket" | "pidFile">): Promise<void> {
  const pid = await exportPid(e);
  if (pid !== undefined) {
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while ((await alive(pid)) && Date.now() < deadline) await sleep(50);
    if (await alive(pid)) process.kill(pid, "SIGKILL");
    while (await alive(pid)) await sleep(20);
  }
  await rm(e.socket, { force: true });
  await rm(e.pidFile, { force: true });
}

/** True while the process exists and is not a zombie (a container's init may be slow to reap it). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && !/^\d+ \(.*\) Z/s.test(stat);
}

/** The group id of QEMU's account, if one of the known accounts exists. */
async function qemuGroup(): Promise<number | undefined> {
  for (const account of QEMU_ACCOUNTS) {
    const id = await execa("id", ["-g", account], { reject: false, stdin: "ignore", timeout: 10_000 });
    if (!id.failed && /^\d+$/.test(String(id.stdout).trim())) return Number(String(id.stdout).trim());
  }
  return undefined;
}

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { freePort } from "./process-env.js";
import { waitFor } from "./wait-for.js";

/** A throwaway sshd (with SFTP) on 127.0.0.1 that lets the current user in with a fresh key. */
export interface TestSshd {
  port: number;
  /** Its private folder (keys, config); tests may put scripts here. */
  dir: string;
  /** The client's private key. */
  keyFile: string;
  /**
   * ssh options that log in with the test key and trust this server on first contact (accept-new, with a
   * known_hosts file of its own), without the port (the target names it).
   */
  sshOptions: string[];
  /** SSH_OPTIONS as a user writes them for this server, port included. */
  sshOptionsLine: string;
  /** Starts sshd again after {@link TestSshd.stop} (same port and keys). */
  start(): Promise<void>;
  /** Stops sshd (e.g. an unreachable mirror); its folder stays for a later start. */
  stop(): Promise<void>;
  /** Stops sshd and deletes its folder. */
  close(): Promise<void>;
}

/** Starts /usr/sbin/sshd -D on a free loopback port with its own host key, client key and config. */
export async function startTestSshd(): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-sshd-"));
  const keyFile = join(dir, "client");
  const port = await freePort();
  let child: ResultPromise | undefined;
  const listening = (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
  const start = async () => {
    if (child) return;
    const sshd = execa("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { reject: false, stdin: "ignore", all: true });
    child = sshd;
    await waitFor(
      async () => {
        if (sshd.exitCode !== null) throw new Error(`sshd exited: ${String((await sshd).all ?? "").trim()}`);
        return listening();
      },
      { timeoutMs: 10_000, intervalMs: 50, what: `sshd on port ${port}` },
    );
  };
  const stop = async () => {
    if (!child) return;
    child.kill("SIGTERM");
    await child;
    child = undefined;
    await waitFor(async () => !(await listening()), { timeoutMs: 10_000, what: "sshd to stop" });
  };
  try {
    for (const key of ["host", "client"]) await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, key)], { timeout: 30_000 });
    await writeFile(join(dir, "authorized_keys"), await readFile(`${keyFile}.pub`), { mode: 0o600 });
    const config = [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "StrictModes no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "Subsystem sftp internal-sftp",
    ].join("\n");
    await writeFile(join(dir, "sshd_config"), `${config}\n`);
    await start();
  } catch (err) {
    await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const knownHosts = join(dir, "known_hosts");
  const sshOptions = ["-o", `IdentityFile=${keyFile}`, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"];
  return {
    port,
    dir,
    keyFile,
    sshOptions,
    sshOptionsLine: ["-q", ...sshOptions, "-p", String(port)].join(" "),
    start,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

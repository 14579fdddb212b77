import { writeFile, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { freePort, waitFor } from "@vmbs/lab";

/** A real sshd on a free loopback port, key-only root login with a generated key (its own authorized_keys). */
export interface TestSshd {
  port: number;
  /** The client's private key (for SSH_OPTIONS `-i` / IdentityFile). */
  keyFile: string;
  /** SSH_OPTIONS as a user writes them for this server. */
  sshOptions: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function createTestSshd(dir: string): Promise<TestSshd> {
  const hostKey = join(dir, "host_ed25519");
  const keyFile = join(dir, "client_ed25519");
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey], { timeout: 30_000 });
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile], { timeout: 30_000 });
  await writeFile(join(dir, "authorized_keys"), await readFile(`${keyFile}.pub`), { mode: 0o600 });
  const config = join(dir, "sshd_config");
  await writeFile(
    config,
    [
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const port = await freePort();
  let child: ResultPromise | undefined;
  const listening = () =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
  return {
    port,
    keyFile,
    sshOptions: `-q -o IdentityFile=${keyFile} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p ${port} -o ConnectTimeout=5`,
    async start() {
      child = execa("/usr/sbin/sshd", ["-D", "-e", "-p", String(port), "-o", "ListenAddress=127.0.0.1", "-f", config, "-h", hostKey], { reject: false, stdin: "ignore" });
      await waitFor(listening, { timeoutMs: 10_000, what: `sshd on port ${port}` });
    },
    async stop() {
      if (!child) return;
      child.kill("SIGTERM");
      await child;
      child = undefined;
      await waitFor(async () => !(await listening()), { timeoutMs: 10_000, what: "sshd to stop" });
    },
  };
}

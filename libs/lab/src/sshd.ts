import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { freePort } from "./process-env.js";
import { waitFor } from "./wait-for.js";

/** A throwaway sshd on 127.0.0.1 that lets the current user in with a fresh key; `stop()` deletes its folder. */
export interface TestSshd {
  port: number;
  /** Its private folder (keys, config); tests may put scripts here. */
  dir: string;
  /** ssh options that log in with the test key and trust this server (for SSH_OPTIONS). */
  sshOptions: string[];
  stop(): Promise<void>;
}

/** Starts /usr/sbin/sshd -D on a free loopback port with its own host key, client key and config. */
export async function startTestSshd(): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-sshd-"));
  try {
    for (const key of ["host", "client"]) await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, key)], { timeout: 10_000 });
    await writeFile(join(dir, "authorized_keys"), await readFile(join(dir, "client.pub")));
    const port = await freePort();
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
    ].join("\n");
    await writeFile(join(dir, "sshd_config"), `${config}\n`);
    const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    const listening = (): Promise<boolean> =>
      new Promise((resolve) => {
        const s = connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
        s.on("error", () => resolve(false));
      });
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr.trim()}`);
      return listening();
    }, { timeoutMs: 10_000, intervalMs: 50, what: `sshd on port ${port}` });
    return {
      port,
      dir,
      sshOptions: ["-o", `IdentityFile=${join(dir, "client")}`, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"],
      async stop() {
        if (child.exitCode === null) {
          child.kill("SIGTERM");
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

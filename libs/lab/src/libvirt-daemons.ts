import { execa } from "execa";
import { waitFor } from "./wait-for.js";

/** Default libvirt connection URI of the lab. */
export const DEFAULT_LIBVIRT_URI = "qemu:///system";

/**
 * Makes sure libvirt answers on `uri` (default `qemu:///system`). There is no systemd on
 * the lab machines, so when virsh cannot connect this starts `virtlogd -d` and
 * `libvirtd -d` by hand (each only if no process of that name runs) and waits up to 30 s.
 */
export async function ensureLibvirt(uri: string = DEFAULT_LIBVIRT_URI): Promise<void> {
  if (await virshAnswers(uri)) return;
  // virtlogd first: libvirtd needs it to start any domain.
  for (const daemon of ["virtlogd", "libvirtd"]) {
    const running = await execa("pgrep", ["-x", daemon], { reject: false, timeout: 10_000 });
    if (running.exitCode === 0) continue;
    // -d daemonizes; stdio is ignored so the forked daemon keeps no pipe of ours open.
    await execa(daemon, ["-d"], { stdio: "ignore", timeout: 30_000 });
  }
  await waitFor(() => virshAnswers(uri), { timeoutMs: 30_000, intervalMs: 200, what: `libvirt at ${uri}` });
}

async function virshAnswers(uri: string): Promise<boolean> {
  const result = await execa("virsh", ["-c", uri, "list", "--all"], { reject: false, stdin: "ignore", timeout: 10_000 });
  return result.exitCode === 0;
}

import { execa } from "execa";

/**
 * Runs `virsh -c URI ...args` and returns its trimmed stdout; rejects (with stderr in the
 * message) on a non-zero exit. The C.UTF-8 locale keeps outputs such as `domstate`
 * untranslated while still passing non-ASCII domain names through intact.
 */
export async function virsh(uri: string, args: readonly string[]): Promise<string> {
  const result = await execa("virsh", ["-c", uri, ...args], {
    stdin: "ignore",
    env: { LC_ALL: "C.UTF-8" },
    // Generous: a destroy or an undefine under load takes seconds, never minutes.
    timeout: 120_000,
  });
  return result.stdout.trim();
}

/** `virsh domstate` of a domain, e.g. "running", "paused", "shut off". */
export async function domainState(uri: string, domain: string): Promise<string> {
  return virsh(uri, ["domstate", domain]);
}

/** Whether a state reported by `virsh domstate` means no QEMU process serves the domain. */
export function isOffline(state: string): boolean {
  return state === "shut off" || state === "crashed";
}

/** Runs an HMP command through libvirt and returns its output. */
export async function hmp(uri: string, domain: string, command: string): Promise<string> {
  return virsh(uri, ["qemu-monitor-command", domain, "--hmp", command]);
}

/** Whether a failed virsh call failed only because the domain does not exist. */
export function isNoSuchDomain(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /failed to get domain|Domain not found/i.test(text);
}

import { mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestSshd } from "@vmbs/lab";

/** One archive-looking folder with tool files (and optionally a foreign one), mtime of its full at `mtimeS`. */
export async function chainFolder(dir: string, domain: string, mtimeS: number, extra: Record<string, string> = {}): Promise<void> {
  await mkdir(join(dir, "checkpoints"), { recursive: true });
  await mkdir(join(dir, "checksums"));
  await writeFile(join(dir, "vda.full.data"), "data");
  await writeFile(join(dir, "checksums", "virtnbdbackup.0.sha256"), `${"0".repeat(64)}  vda.full.data\n`);
  await writeFile(join(dir, `${domain}.cpt`), "[]");
  await writeFile(join(dir, "checkpoints", "virtnbdbackup.0.xml"), "<x/>");
  for (const [name, text] of Object.entries(extra)) await writeFile(join(dir, name), text);
  await utimes(join(dir, "vda.full.data"), mtimeS, mtimeS);
  for (const f of [`${domain}.cpt`, "checkpoints/virtnbdbackup.0.xml", "checksums/virtnbdbackup.0.sha256"]) await utimes(join(dir, f), mtimeS + 60, mtimeS + 60);
}

/**
 * SSH_OPTIONS words for the test sshd with a known_hosts file of the test's own: the lab's options turn host key
 * checking off (UserKnownHostsFile=/dev/null), which the mirror refuses.
 */
export function sshdOptions(sshd: TestSshd, knownHosts: string, strict = "accept-new"): string[] {
  return ["-q", "-o", `IdentityFile=${sshd.keyFile}`, "-o", "BatchMode=yes", "-o", `StrictHostKeyChecking=${strict}`, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-p", String(sshd.port)];
}

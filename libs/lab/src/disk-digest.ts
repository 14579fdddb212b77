import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { sha256File } from "@vmbs/chain";
import { flushLive } from "./guest-write.js";
import { domainState, isOffline, virsh } from "./virsh.js";

/** Scratch space for raw copies: /var/tmp, since /tmp may be a small tmpfs. */
const SCRATCH_ROOT = "/var/tmp";

/**
 * sha256 (hex) of the guest-visible content of a qcow2 image: the image is converted to
 * raw (`qemu-img convert -U`, so it also works while QEMU holds the image) and the raw
 * bytes are hashed. Two images with equal content give equal digests whatever their
 * allocation or backing layout.
 */
export async function imageDigest(path: string): Promise<string> {
  const dir = await mkdtemp(join(SCRATCH_ROOT, "vmbs-digest-"));
  try {
    const raw = join(dir, "disk.raw");
    await execa("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", path, raw], { stdin: "ignore", timeout: 30 * 60_000 });
    return await sha256File(raw);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * {@link imageDigest} of a domain's vda image, taken consistently: a running domain is
 * suspended meanwhile (and resumed after); a live QEMU is asked to flush first, since
 * qcow2 metadata of recent writes may still sit in its cache.
 */
export async function domainDiskDigest(uri: string, domain: string, imagePath: string): Promise<string> {
  const state = await domainState(uri, domain);
  if (isOffline(state)) return imageDigest(imagePath);
  const wasRunning = state === "running";
  if (wasRunning) await virsh(uri, ["suspend", domain]);
  try {
    await flushLive(uri, domain);
    return await imageDigest(imagePath);
  } finally {
    if (wasRunning) await virsh(uri, ["resume", domain]);
  }
}

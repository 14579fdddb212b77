import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { waitFor } from "./wait-for.js";

export interface RestoreOptions {
  /** Restore up to this checkpoint (`--until`); default the whole chain. */
  until?: string;
}

/**
 * Restores a chain folder with stock virtnbdrestore into the empty folder `out` and returns the image's path.
 * Fails the test on a non-zero exit or an ERROR line. Returns only once the qemu-nbd that virtnbdrestore
 * writes through has let go of the image: virtnbdrestore can exit before it has, and a read then (`-U`) sees
 * qcow2 metadata that is not flushed yet — a disk of zeros.
 */
export async function restoreChain(folder: string, out: string, o: RestoreOptions = {}): Promise<string> {
  const until = o.until ? ["--until", o.until] : [];
  const r = await execa("virtnbdrestore", ["--input", folder, "--output", out, ...until, "--noprogress", "--logfile", join(out, "restore.log")], {
    reject: false,
    stdin: "ignore",
    timeout: 30 * 60_000,
  });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /\b(ERROR|CRITICAL)\b/, `virtnbdrestore of ${folder}${o.until ? ` until ${o.until}` : ""} logged an error`);
  const image = (await readdir(out)).find((f) => f !== "restore.log" && !f.endsWith(".xml"));
  assert.ok(image, "virtnbdrestore produced no image");
  const path = join(out, image);
  // Without -U, qemu-img needs the image's write lock: it gets it once qemu-nbd has closed the image.
  await waitFor(async () => (await execa("qemu-img", ["info", path], { reject: false, stdin: "ignore", timeout: 30_000 })).exitCode === 0, {
    timeoutMs: 60_000,
    what: `virtnbdrestore's qemu-nbd to release ${path}`,
  });
  return path;
}

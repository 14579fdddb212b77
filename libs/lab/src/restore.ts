import assert from "node:assert/strict";
import { runEngineRestore } from "@vmbs/virt";

export interface RestoreOptions {
  /** Restore up to this checkpoint (`--until`); default the whole chain. */
  until?: string;
}

/**
 * Restores a chain folder with stock virtnbdrestore (libs/virt's runner) into the empty folder `out` and
 * returns the image's path, once qemu-nbd has let go of it. Fails the test when the restore fails or yields
 * more than one image (lab domains have one disk).
 */
export async function restoreChain(folder: string, out: string, o: RestoreOptions = {}): Promise<string> {
  const { images } = await runEngineRestore({ inputDir: folder, outputDir: out, ...(o.until ? { untilCheckpoint: o.until } : {}), timeoutMs: 30 * 60_000 });
  assert.equal(images.length, 1, `virtnbdrestore of ${folder} gave ${images.join(", ")}`);
  return images[0]!;
}

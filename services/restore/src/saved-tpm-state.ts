import { constants } from "node:fs";
import { chmod, copyFile, lstat, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { tpmStateCopyName } from "@vmbs/chain";
import { SWTPM_STATE_ROOT, tpm2StatePath, type Libvirt } from "@vmbs/virt";
import type { InPlaceFile } from "./in-place-file.js";

/*
 * The TPM 2.0 state of a checkpoint: the agent copies swtpm's permanent state file into the set beside the
 * checkpoint's data as `tpm2-00.permall.<checkpoint>` (backup-agent save-tpm-state.ts). libvirt finds a domain's
 * state by its UUID, so a restore puts the copy under the UUID of the domain that gets it.
 */

/** The set's copy of the TPM state at `checkpoint`, if there is one. */
export async function savedTpmStateCopy(setDir: string, checkpoint: string): Promise<string | undefined> {
  const copy = join(setDir, tpmStateCopyName(checkpoint));
  return (await lstat(copy).then((s) => s.isFile(), () => false)) ? copy : undefined;
}

/** Decides the TPM step of restoring `domain` in place: its state, found by its current UUID, becomes the copy. */
export async function planInPlaceTpm(libvirt: Libvirt, domain: string, setDir: string, checkpoint: string, stateRoot: string = SWTPM_STATE_ROOT): Promise<InPlaceFile> {
  const what = "the TPM state";
  const saved = await savedTpmStateCopy(setDir, checkpoint);
  const tpm = await libvirt.tpmEmulator(domain);
  if (saved === undefined) return tpm ? { kind: "keep", what, why: `the set holds no copy of it at ${checkpoint}` } : { kind: "none" };
  if (!tpm) return { kind: "keep", what, why: `${domain} has no emulated TPM now` };
  if (tpm.version !== "2.0") return { kind: "keep", what, why: `${domain}'s TPM is version ${tpm.version || "1.2"} now; the copy is TPM 2.0 state` };
  return { kind: "replace", what, saved, target: tpm2StatePath(tpm.uuid, stateRoot) };
}

/**
 * Gives a new domain (UUID `uuid`, fresh) the saved TPM state: creates its state folder, never an existing one,
 * and the state file in it (root-only; libvirt hands it to swtpm's user at each start). Returns the folder made,
 * which the caller removes if the restore fails later; removes it itself if this fails.
 */
export async function placeNewTpmState(saved: string, uuid: string, stateRoot: string = SWTPM_STATE_ROOT): Promise<{ file: string; folder: string }> {
  const file = tpm2StatePath(uuid, stateRoot);
  const folder = dirname(dirname(file));
  await mkdir(stateRoot, { recursive: true, mode: 0o711 });
  await mkdir(folder, { mode: 0o711 });
  try {
    await mkdir(dirname(file), { mode: 0o700 });
    await copyFile(saved, file, constants.COPYFILE_EXCL);
    await chmod(file, 0o600);
  } catch (err) {
    await rm(folder, { recursive: true, force: true });
    throw err;
  }
  return { file, folder };
}

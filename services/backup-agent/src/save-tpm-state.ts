import { copyFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { tpmStateCopyName, type ChainFolder } from "@vmbs/chain";
import { SWTPM_STATE_ROOT, tpm2StatePath } from "@vmbs/virt";

/** What {@link saveTpmState} did. */
export type TpmStateCopy =
  | { kind: "saved"; folder: ChainFolder; file: string }
  /** The domain has no emulated TPM; the folder is unchanged. */
  | { kind: "none"; folder: ChainFolder }
  /** It has one whose state is not copied, for the reason given (worth a warning); the folder is unchanged. */
  | { kind: "skipped"; folder: ChainFolder; why: string };

/**
 * Copies the domain's TPM 2.0 state (swtpm, see @vmbs/virt tpm-state.ts) into its chain folder beside the new
 * checkpoint's data, as `tpm2-00.permall.<checkpoint>`, and returns the folder with it. Taken after the engine ran
 * (a domain the agent started paused is stopped by then); swtpm replaces the file whole, so the copy is
 * consistent. A temporary hidden file is renamed into place, so a crash leaves no half copy under the real name.
 * Throws when a TPM 2.0 domain has no state file: the agent starts a shut-off domain for its backup, so by now
 * libvirt has made one; its absence means the state lives elsewhere (a container without the swtpm folder).
 */
export async function saveTpmState(
  tpm: { uuid: string; version: string } | undefined,
  folder: ChainFolder,
  checkpoint: string,
  stateRoot: string = SWTPM_STATE_ROOT,
): Promise<TpmStateCopy> {
  if (!tpm) return { kind: "none", folder };
  if (tpm.version !== "2.0") return { kind: "skipped", folder, why: `its TPM is version ${tpm.version || "1.2"}: only TPM 2.0 state is backed up` };
  const source = tpm2StatePath(tpm.uuid, stateRoot);
  if (!(await stat(source).then((s) => s.isFile(), () => false))) throw new Error(`no TPM state file at ${source} (is ${stateRoot} the swtpm state folder, mounted here?)`);
  const name = tpmStateCopyName(checkpoint);
  const tmp = join(folder.dir, `.${name}.vmbs-tmp`);
  try {
    await copyFile(source, tmp);
    await rename(tmp, join(folder.dir, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const { size, mtimeMs } = await stat(join(folder.dir, name));
  return { kind: "saved", file: name, folder: { ...folder, files: [...folder.files.filter((f) => f.path !== name), { path: name, size, mtimeMs }] } };
}

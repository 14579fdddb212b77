import type { ChainFile, ChainFolder } from "./chain-folder.js";

/*
 * Pure classification of the files in a chain folder, following virtnbdbackup 1.9.15's naming
 * (virtnbdbackup.md §2.2). Every match is anchored on whole name tokens: the seed matched checkpoint
 * names as substrings, so dropping `virtnbdbackup.1` also deleted the files of `virtnbdbackup.10`.
 */

/** Name of the first checkpoint of every chain; its data files are the `<dev>.full.data` ones. */
export const FIRST_CHECKPOINT = "virtnbdbackup.0";

/**
 * Data files are written only at the top level of the chain folder. Hidden names are skipped because the
 * engine's shell-style globs (`*.data*`, `*.full.data`) skip them too.
 */
function topLevel(folder: ChainFolder): ChainFile[] {
  return folder.files.filter((f) => !f.path.includes("/") && !f.path.startsWith("."));
}

/** Checkpoint names are single path tokens; anything else (empty, with '/') can own no file. */
function isUsableName(checkpoint: string): boolean {
  return checkpoint !== "" && !checkpoint.includes("/");
}

/** True when `name` is `<something non-empty>` followed by exactly `suffix`. */
function hasPrefixAndSuffix(name: string, suffix: string): boolean {
  return name.length > suffix.length && name.endsWith(suffix);
}

/** Finished data files (`*.data`) at the top of the folder. */
export function dataFiles(folder: ChainFolder): ChainFile[] {
  return topLevel(folder).filter((f) => hasPrefixAndSuffix(f.path, ".data"));
}

/** Unfinished data files (`*.data.partial`): the engine renames them to `.data` only on success. */
export function partialFiles(folder: ChainFolder): ChainFile[] {
  return topLevel(folder).filter((f) => hasPrefixAndSuffix(f.path, ".data.partial"));
}

/** `<dev>.full.data` files: the finished full backup that starts a chain. */
function fullDataFiles(folder: ChainFolder): ChainFile[] {
  return topLevel(folder).filter((f) => hasPrefixAndSuffix(f.path, ".full.data"));
}

/** `<dev>.copy.data` files, finished or not. */
function copyFiles(folder: ChainFolder): ChainFile[] {
  return topLevel(folder).filter(
    (f) => hasPrefixAndSuffix(f.path, ".copy.data") || hasPrefixAndSuffix(f.path, ".copy.data.partial"),
  );
}

/** True when a finished full backup (`<dev>.full.data`) is present, i.e. there is a chain to continue or restore. */
export function hasChain(folder: ChainFolder): boolean {
  return fullDataFiles(folder).length > 0;
}

/**
 * True when virtnbdbackup would treat the folder as empty: no top-level file matches its `*.data*` glob.
 * Logs, `vmconfig.*`, `checkpoints/` and `*.qcow.json` left by failed runs therefore do not count.
 * Like the shell glob, names starting with a dot are ignored.
 */
export function isEffectivelyEmpty(folder: ChainFolder): boolean {
  return !topLevel(folder).some((f) => f.path.includes(".data"));
}

/**
 * True when the folder holds a copy-mode backup: `<dev>.copy.data` (finished or partial), no full backup and no
 * checkpoint list entries. A raw disk inside a full backup is also written as `.copy.data`, hence the full check.
 */
export function isCopyBackup(folder: ChainFolder): boolean {
  const anyFull = topLevel(folder).some(
    (f) => hasPrefixAndSuffix(f.path, ".full.data") || hasPrefixAndSuffix(f.path, ".full.data.partial"),
  );
  return copyFiles(folder).length > 0 && !anyFull && (folder.cpt === null || folder.cpt.length === 0);
}

/** The suffixes a finished data file of `checkpoint` can have (the full backup is checkpoint 0). */
function dataSuffixes(checkpoint: string): string[] {
  const suffixes = [`.inc.${checkpoint}.data`];
  if (checkpoint === FIRST_CHECKPOINT) suffixes.push(".full.data");
  return suffixes;
}

/**
 * The finished data files written for one checkpoint: `<dev>.inc.<cp>.data`, or `<dev>.full.data` for
 * `virtnbdbackup.0`. Exact: `virtnbdbackup.1` never matches `virtnbdbackup.10`.
 */
export function dataFilesOfCheckpoint(folder: ChainFolder, checkpoint: string): ChainFile[] {
  if (!isUsableName(checkpoint)) return [];
  const suffixes = dataSuffixes(checkpoint);
  return topLevel(folder).filter((f) => suffixes.some((s) => hasPrefixAndSuffix(f.path, s)));
}

/**
 * The agent's copy of a domain's TPM 2.0 state at `checkpoint`, `tpm2-00.permall.<checkpoint>`: swtpm's own file
 * name with the checkpoint appended, as the engine names its nvram copies (so it is a tool file of the checkpoint).
 */
export function tpmStateCopyName(checkpoint: string): string {
  return `tpm2-00.permall.${checkpoint}`;
}

/** The files of a checkpoint whose sha256 the agent records: its finished data files and its TPM state copy. */
export function checksummedFilesOfCheckpoint(folder: ChainFolder, checkpoint: string): ChainFile[] {
  if (!isUsableName(checkpoint)) return [];
  const tpm = tpmStateCopyName(checkpoint);
  return [...dataFilesOfCheckpoint(folder, checkpoint), ...topLevel(folder).filter((f) => f.path === tpm)];
}

/**
 * Every file that belongs to one checkpoint: its data files (finished, `.partial`, and ≥1.9.40 `.chksum`),
 * `checkpoints/<cp>.xml`, our `checksums/<cp>.sha256`, `vmconfig.<cp>.xml`, `<dev>.<cp>.qcow.json`, `autostart.<cp>`, the
 * `<loader or nvram basename>.<cp>` copies and our TPM state copy `tpm2-00.permall.<cp>`. Matching is on whole dot-separated tokens.
 */
export function filesOfCheckpoint(folder: ChainFolder, checkpoint: string): ChainFile[] {
  // The seed's empty name matched every file and wiped the folder; an unusable name must own nothing.
  if (!isUsableName(checkpoint)) return [];
  const dataLike = dataSuffixes(checkpoint).flatMap((s) => [s, `${s}.partial`, `${s}.chksum`]);
  const topSuffixes = [...dataLike, `.${checkpoint}.qcow.json`, `.${checkpoint}.xml`, `.${checkpoint}`];
  const nested = [`checkpoints/${checkpoint}.xml`, `checksums/${checkpoint}.sha256`];
  const top = topLevel(folder).filter((f) => topSuffixes.some((s) => hasPrefixAndSuffix(f.path, s)));
  return [...folder.files.filter((f) => nested.includes(f.path)), ...top];
}

/** The smallest mtime (ms) of any file in the folder, or null when it holds no file. */
export function oldestMtime(folder: ChainFolder): number | null {
  let oldest: number | null = null;
  for (const f of folder.files) if (oldest === null || f.mtimeMs < oldest) oldest = f.mtimeMs;
  return oldest;
}

/* ------------------------------------------------------------------ ownership */

/** A disk target (`vda`, `sdb`, `hdc`): the first token of every data file name. */
const DISK = "[A-Za-z0-9_-]+";
const CP = "virtnbdbackup\\.\\d+";
/**
 * Top-level names virtnbdbackup (1.9.15 … 2.x) writes into a chain folder, matched whole: data files and their
 * `.partial`/`.chksum`, qcow info, vmconfig, autostart and loader/nvram/kernel copies, and its logs.
 */
const ENGINE_TOP = [
  `${DISK}\\.(?:full|copy|inc\\.${CP})\\.data(?:\\.partial|\\.chksum)?`,
  `${DISK}\\.(?:${CP}|copy)\\.qcow\\.json`,
  `vmconfig\\.(?:${CP}|copy)\\.xml`,
  `autostart\\.(?:${CP}|copy)`,
  // `<loader|nvram|kernel|initrd basename>.<checkpoint>`, e.g. `vm_VARS.fd.virtnbdbackup.3`; also the agent's
  // TPM state copy `tpm2-00.permall.<checkpoint>`.
  `[^/]+\\.${CP}`,
  `backup\\.(?:full|inc|diff|copy|auto)\\.\\d+\\.log`,
  // Our own temporary files (rewriteCpt writes `.<domain>.cpt.vmbs-tmp`).
  `\\.[^/]+\\.vmbs-tmp`,
].map((p) => new RegExp(`^${p}$`));
/** Files the tool writes in sub-folders: the engine's checkpoint XML, our checksum files (checksums.ts) and their temporaries. */
const TOOL_NESTED = [`checkpoints/${CP}\\.xml`, `checksums/${CP}\\.sha256`, `checksums/\\.${CP}\\.sha256\\.vmbs-tmp`].map((p) => new RegExp(`^${p}$`));

/**
 * True when `path` (relative to a chain folder of `domain`) is a file the tool itself makes, by exact name:
 * only such files may ever be deleted. Anything else — a user's `vdisk1.img`, notes, another domain's
 * `.cpt`, unknown sub-folders — belongs to someone else.
 */
export function isToolFile(path: string, domain: string): boolean {
  if (path === `${domain}.cpt`) return domain !== "" && !domain.includes("/");
  if (path.includes("/")) return TOOL_NESTED.some((re) => re.test(path));
  return ENGINE_TOP.some((re) => re.test(path));
}

/** True for the sub-folders of a chain folder the tool writes into: the engine's `checkpoints/`, our `checksums/`. */
export function isToolFolder(name: string): boolean {
  return name === "checkpoints" || name === "checksums";
}

/** The files in a chain folder the tool did not make (see {@link isToolFile}). */
export function foreignFiles(folder: ChainFolder, domain: string): ChainFile[] {
  return folder.files.filter((f) => !isToolFile(f.path, domain));
}

/**
 * What an in-place restore does with a file that is not a disk image but belongs to the point in time (the UEFI
 * variables, the TPM state): replace it with the set's copy, leave it (and why), or refuse the whole restore.
 */
export type InPlaceFile =
  /** The checkpoint's domain had no such file: nothing to do, nothing to say. */
  | { kind: "none" }
  /** The domain's own file `target` becomes the set's copy `saved`. */
  | { kind: "replace"; what: string; saved: string; target: string }
  /** The file stays as it is, for the reason given. */
  | { kind: "keep"; what: string; why: string }
  /** Replacing it would touch something that is not the domain's: the restore is refused. */
  | { kind: "refuse"; why: string };

/** The announced (and planned) step of a decision, if it has one. */
export function inPlaceFileStep(f: InPlaceFile, checkpoint: string): string | undefined {
  if (f.kind === "replace") return `replace ${f.what} ${f.target} with the copy saved at ${checkpoint} (the original kept aside until every file is in place)`;
  if (f.kind === "keep") return `leave ${f.what} as it is: ${f.why}`;
  return undefined;
}

/** A virsh call that failed; `stderr` holds libvirt's own words, which are usually the best reason to show. */
export class VirshError extends Error {
  readonly args: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;
  constructor(args: readonly string[], exitCode: number | undefined, stderr: string, options?: ErrorOptions) {
    super(`virsh ${args[0] ?? ""} failed: ${stderr.trim() || `exit code ${exitCode}`}`, options);
    this.name = "VirshError";
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** virtnbdbackup is missing or could not be queried. */
export class EngineUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EngineUnavailableError";
  }
}

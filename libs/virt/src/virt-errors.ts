/** A libvirt operation that failed; the message is libvirt's own, usually the best reason to show. */
export class LibvirtError extends Error {
  /** The bridge operation, e.g. "checkpoints" or "start". */
  readonly op: string;
  /** libvirt's error code (virErrorNumber, e.g. 42 = no such domain); undefined when the bridge itself failed. */
  readonly code: number | undefined;
  constructor(op: string, message: string, code?: number, options?: ErrorOptions) {
    super(`libvirt ${op}: ${message}`, options);
    this.name = "LibvirtError";
    this.op = op;
    this.code = code;
  }
}

/** virtnbdbackup is missing or could not be queried. */
export class EngineUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EngineUnavailableError";
  }
}

import { VmbsError } from "@vmbs/contracts";

/** A libvirt operation that failed; the message is libvirt's own, usually the best reason to show. */
export class LibvirtError extends VmbsError {
  /** The bridge operation, e.g. "checkpoints" or "start". */
  readonly op: string;
  /** libvirt's error code (virErrorNumber, e.g. 42 = no such domain); undefined when the bridge itself failed. */
  readonly libvirtCode: number | undefined;
  constructor(op: string, message: string, libvirtCode?: number, options?: ErrorOptions) {
    super("failed", `libvirt ${op}: ${message}`, options);
    this.op = op;
    this.libvirtCode = libvirtCode;
  }
}

/** libvirt's VIR_ERR_NO_DOMAIN: the domain does not exist (any more). */
export const VIR_ERR_NO_DOMAIN = 42;

/** Whether `err` says the domain asked about is not defined: e.g. undefined between a listing and a question. */
export function isDomainGone(err: unknown): boolean {
  return err instanceof LibvirtError && err.libvirtCode === VIR_ERR_NO_DOMAIN;
}

/**
 * A libvirt call that got no answer within its limit (a wedged libvirtd, a dead remote host). The bridge that
 * carried it is restarted, since its connection may be stuck for good.
 */
export class LibvirtTimeoutError extends LibvirtError {
  /** The limit that passed, in milliseconds. */
  readonly timeoutMs: number;
  constructor(op: string, timeoutMs: number, options?: ErrorOptions) {
    super(op, `no answer within ${timeoutMs / 1000} s (VMBS_LIBVIRT_TIMEOUT); the libvirt connection was restarted`, undefined, options);
    this.timeoutMs = timeoutMs;
  }
}

/** virtnbdbackup is missing or could not be queried. */
export class EngineUnavailableError extends VmbsError {
  constructor(message: string, options?: ErrorOptions) {
    super("unavailable", message, options);
  }
}

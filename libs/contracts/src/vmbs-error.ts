/*
 * One error type for the project, like nats.js's ServiceError(code, message): every error class extends
 * VmbsError with a code from this small list, and a service's error reply takes its status from that code
 * (errorReplyStatus) instead of listing classes.
 */

/** What kind of failure it is, and the status of an error reply (Nats-Service-Error-Code) that carries it. */
export const vmbsErrorStatus = {
  /** The request or its input is refused as given (bad input, an unsafe path, an unusable backup set): fix it. */
  refused: 400,
  /**
   * Something it needs is held by another (a chain lease, a host id): try again once that is done. A refused
   * request like any other (400), not 503: the service itself is not overloaded.
   */
  busy: 400,
  /** The setup is wrong (a setting, credentials, the backup root, a missing durable): fix the setup. */
  misconfigured: 500,
  /** A server or program it needs is unreachable, missing or died (NATS, Redis, virtnbdbackup): try again later. */
  unavailable: 503,
  /** An operation failed on the way (libvirt, qemu-img, virtnbdrestore, rsync, a notification): see the message. */
  failed: 500,
  /** A person cancelled it. */
  cancelled: 499,
} as const;

export type VmbsErrorCode = keyof typeof vmbsErrorStatus;

export class VmbsError extends Error {
  constructor(
    readonly code: VmbsErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    // The subclass's own name (BackupSetError, …), as logs and `assert.throws({ name })` see it.
    this.name = new.target.name;
  }
}

/** The status of a service's error reply for `err`: its code's, 500 for an error that is not a VmbsError (a bug). */
export function errorReplyStatus(err: unknown): number {
  return err instanceof VmbsError ? vmbsErrorStatus[err.code] : 500;
}

/* Errors (and the lease value they report) of chain-lease.ts, by condition as nats.js does. */

import { VmbsError } from "@vmbs/contracts";

/** Who holds a chain: the JSON value of a lease key. */
export interface LeaseHolder {
  holder: string;
  op: string;
  /** ISO time of the acquire. */
  since: string;
}

/** `acquire` gave up: someone else held the chain for the whole wait. */
export class LeaseBusyError extends VmbsError {
  readonly retryable = true;
  constructor(
    readonly key: string,
    /** The holder seen last; undefined when the value was unreadable or the key vanished meanwhile. */
    readonly current: LeaseHolder | undefined,
    options?: ErrorOptions,
  ) {
    super("busy", `chain lease ${key} is busy${current ? `: held by ${current.holder} for ${current.op} since ${current.since}` : ""}`, options);
  }
}

/** A held lease stopped being ours: expired (renewals failed for a whole TTL) or taken over by another holder. */
export class LeaseLostError extends VmbsError {
  readonly retryable = true;
  /** `label` names the kind of lease in the message; default "chain lease". */
  constructor(readonly key: string, reason: string, options?: ErrorOptions & { label?: string }) {
    super("failed", `${options?.label ?? "chain lease"} ${key} lost: ${reason}`, options);
  }
}

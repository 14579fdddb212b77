import { connect, type NatsConnection } from "@nats-io/transport-node";

export type { NatsConnection } from "@nats-io/transport-node";

export class BusConnectError extends Error {
  constructor(readonly url: string, options: ErrorOptions) {
    super(`cannot connect to NATS at ${url}`, options);
    this.name = "BusConnectError";
  }
}

/** How long the FIRST connect may take: a wrong NATS_URL is reported at start-up instead of hanging. */
const firstConnectTimeoutMs = 5_000;

/** Connects with endless reconnects, so a restarting nats-server doesn't take the services down with it. */
export async function connectBus(url: string, name: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 1000, timeout: firstConnectTimeoutMs });
  } catch (err) {
    throw new BusConnectError(url, { cause: err });
  }
}
